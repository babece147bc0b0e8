//! Sim: several membership cores against one FakeRedis in virtual time. Each node has a model of
//! its local participants (joining a room's first one calls `join_room`, the last one leaving
//! calls `leave_room`); a reachability matrix between nodes stands in for the mesh (it decides
//! `linked_peers_hold_it`). Commands travel with a fixed latency each way, fail after the
//! supervisor's response timeout, and run at Redis in arrival order. The invariants of
//! docs/cluster.md are checked as Redis runs each script and after every step (`checks.rs`).

mod checks;
mod driver;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sfu_proto::RoomId;

use super::{FakeClock, FakeRedis, Job};
use crate::membership::{CmdId, LeaseMember, Membership, MembershipEvent, ScriptValue};
use crate::{BootId, NodeId, NodeRecord};

/// One step of a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Let this many milliseconds pass.
    Advance(u64),
    /// A participant joins room `.1` on node `.0`.
    Join(usize, usize),
    /// A participant of room `.1` leaves node `.0` (if it has any there).
    Leave(usize, usize),
    /// `kill -9` of a node: its participants are gone, its commands in flight stay in flight.
    Kill(usize),
    /// The node starts again (killed first if running), with a new boot.
    Restart(usize),
    /// Cut a node off from Redis (`true`) or reconnect it.
    CutRedis(usize, bool),
    /// Cut the mesh link between two nodes (`true`) or restore it.
    CutPeers(usize, usize, bool),
    /// Redis loses every key (`FLUSHALL`, or a restart without persistence).
    Flush,
    /// Redis stops for this many milliseconds.
    Pause(u64),
}

/// The bench's fixed conditions.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Nodes, started at once.
    pub nodes: usize,
    /// Redis's clock ahead of the nodes' (negative: behind), in milliseconds.
    pub skew_ms: i64,
    /// One way, node to Redis or back.
    pub latency: Duration,
    /// The supervisor's response timeout: no answer by then is a failure.
    pub timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { nodes: 3, skew_ms: 0, latency: Duration::from_millis(2), timeout: Duration::from_secs(1) }
    }
}

struct Node {
    id: NodeId,
    boots: u32,
    lease: LeaseMember,
    /// `None` while killed.
    core: Option<Membership>,
    started: Instant,
    /// Local participants per room.
    participants: BTreeMap<RoomId, u32>,
    held_since: BTreeMap<RoomId, Instant>,
    /// The first command tag sent in each hold: scripts sent before it are not about it.
    hold_first_tag: BTreeMap<RoomId, u64>,
    /// When Redis last wrote this node's lease of each held room, by a script sent in this
    /// hold (a hold Redis never saw cannot be protected by it; a script sent before it,
    /// such as the leave of an earlier hold, is not about it).
    lease_written: BTreeMap<RoomId, Instant>,
    cut_since: Option<Instant>,
    /// The last cut from Redis that ended: (start, end).
    last_cut: Option<(Instant, Instant)>,
    events: Vec<MembershipEvent>,
}

impl Node {
    fn holds(&self, room: &RoomId) -> bool {
        self.participants.get(room).is_some_and(|n| *n > 0)
    }
}

enum Stage {
    ToRedis(Instant),
    /// Waiting in a paused Redis.
    Queued,
    /// Never arrived (cut off, or died with a restarted Redis), or its answer was lost.
    Lost,
    ToNode(Instant, ScriptValue),
}

struct Flight {
    node: usize,
    job: Job,
    id: CmdId,
    sent: Instant,
    stage: Stage,
    /// The node has been told it failed; a late answer is dropped.
    timed_out: bool,
    /// Nodes the sender could not reach when it sent this (so could not know what they hold).
    unlinked: Vec<usize>,
}

/// The simulation.
pub struct Sim {
    cfg: SimConfig,
    now: Instant,
    redis: FakeRedis,
    nodes: Vec<Node>,
    peer_cuts: BTreeSet<(usize, usize)>,
    flights: BTreeMap<u64, Flight>,
    next_tag: u64,
    last_flush: Option<Instant>,
    last_pause_end: Option<Instant>,
    /// When the pause under way began.
    pause_started: Option<Instant>,
    /// When the last pause long enough for the steady rule ended: the beats Redis heard were
    /// further apart than `BEAT_GAP_MS` (a shorter one is no outage to Redis, see `may_lose`).
    last_long_pause_end: Option<Instant>,
    /// Killed incarnations and when.
    dead: Vec<(LeaseMember, Instant)>,
    /// When each incarnation's last script ran.
    last_run: BTreeMap<LeaseMember, Instant>,
    seen_deletions: usize,
    seen_lease_writes: usize,
    seen_keyspace_violations: usize,
    violations: Vec<String>,
}

/// Room `i` of a schedule.
pub fn room(i: usize) -> RoomId {
    RoomId(format!("r{i}"))
}

impl Sim {
    /// All nodes started, Redis empty.
    pub fn new(cfg: SimConfig) -> Self {
        let origin = Instant::now();
        let redis = FakeRedis::new(FakeClock::new(origin, cfg.skew_ms));
        let mut sim = Self {
            cfg,
            now: origin,
            redis,
            nodes: Vec::new(),
            peer_cuts: BTreeSet::new(),
            flights: BTreeMap::new(),
            next_tag: 0,
            last_flush: None,
            last_pause_end: None,
            pause_started: None,
            last_long_pause_end: None,
            dead: Vec::new(),
            last_run: BTreeMap::new(),
            seen_deletions: 0,
            seen_lease_writes: 0,
            seen_keyspace_violations: 0,
            violations: Vec::new(),
        };
        for i in 0..cfg.nodes {
            let id = NodeId(format!("ND_n{i}"));
            let lease = LeaseMember { node: id.clone(), boot: BootId(String::new()) };
            sim.nodes.push(Node {
                id,
                boots: 0,
                lease,
                core: None,
                started: origin,
                participants: BTreeMap::new(),
                held_since: BTreeMap::new(),
                hold_first_tag: BTreeMap::new(),
                lease_written: BTreeMap::new(),
                cut_since: None,
                last_cut: None,
                events: Vec::new(),
            });
            sim.start(i);
        }
        sim.check_state();
        sim
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The fake Redis.
    pub fn redis(&self) -> &FakeRedis {
        &self.redis
    }

    /// Node `i`'s core, unless killed.
    pub fn core(&self, i: usize) -> Option<&Membership> {
        self.nodes[i].core.as_ref()
    }

    /// The events node `i`'s cores have given so far.
    pub fn events(&self, i: usize) -> &[MembershipEvent] {
        &self.nodes[i].events
    }

    /// Every broken invariant so far, described.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Runs one step, then checks the invariants.
    pub fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Advance(ms) => self.run_until(now + Duration::from_millis(ms)),
            Op::Join(n, r) => self.join(n, room(r)),
            Op::Leave(n, r) => self.leave(n, room(r)),
            Op::Kill(n) => self.kill(n),
            Op::Restart(n) => {
                self.kill(n);
                self.start(n);
            }
            Op::CutRedis(n, off) => self.cut_redis(n, off),
            Op::CutPeers(a, b, off) if a != b => {
                let pair = (a.min(b), a.max(b));
                if off {
                    self.peer_cuts.insert(pair);
                } else {
                    self.peer_cuts.remove(&pair);
                }
            }
            Op::CutPeers(..) => {}
            Op::Flush => {
                if self.redis.paused_until().is_some() {
                    self.pause_ended(now);
                }
                self.redis.flush();
                self.last_flush = Some(now);
                let queued: Vec<u64> =
                    self.flights.iter().filter(|(_, f)| matches!(f.stage, Stage::Queued)).map(|(t, _)| *t).collect();
                for tag in queued {
                    self.set_stage(tag, Stage::Lost);
                }
            }
            Op::Pause(ms) => {
                self.pause_started.get_or_insert(now);
                self.redis.pause(now + Duration::from_millis(ms));
            }
        }
        self.run_until(self.now);
        self.check_state();
    }

    /// Ends every cut, then lets `time` pass in steps of half a second, checking as it goes.
    pub fn heal_and_run(&mut self, time: Duration) {
        for n in 0..self.nodes.len() {
            self.apply(&Op::CutRedis(n, false));
        }
        self.peer_cuts.clear();
        let step = Duration::from_millis(500);
        let mut left = time;
        while !left.is_zero() {
            let dt = left.min(step);
            self.apply(&Op::Advance(u64::try_from(dt.as_millis()).unwrap_or(u64::MAX)));
            left -= dt;
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        a != b && !self.peer_cuts.contains(&(a.min(b), a.max(b)))
    }

    fn start(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.boots += 1;
        node.lease = LeaseMember { node: node.id.clone(), boot: BootId(format!("BT{n}x{}", node.boots)) };
        let record = NodeRecord {
            node: node.id.clone(),
            boot: node.lease.boot.clone(),
            signal_url: format!("http://n{n}"),
            relay_addr: format!("n{n}:7882"),
            region: None,
        };
        node.core = Some(Membership::new(record, self.now));
        node.started = self.now;
    }

    fn kill(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if node.core.take().is_some() {
            self.dead.push((node.lease.clone(), self.now));
            node.participants.clear();
            node.held_since.clear();
            node.hold_first_tag.clear();
            node.lease_written.clear();
        }
    }

    fn join(&mut self, n: usize, room: RoomId) {
        let now = self.now;
        let node = &mut self.nodes[n];
        let Some(core) = node.core.as_mut() else { return };
        let count = node.participants.entry(room.clone()).or_default();
        *count += 1;
        if *count == 1 {
            node.held_since.insert(room.clone(), now);
            node.hold_first_tag.insert(room.clone(), self.next_tag);
            node.lease_written.remove(&room);
            core.join_room(room, now);
            self.drain(n);
        }
    }

    fn leave(&mut self, n: usize, room: RoomId) {
        if self.nodes[n].core.is_none() || !self.nodes[n].holds(&room) {
            return;
        }
        let linked = (0..self.nodes.len())
            .any(|m| self.linked(n, m) && self.nodes[m].core.is_some() && self.nodes[m].holds(&room));
        let now = self.now;
        let node = &mut self.nodes[n];
        let count = node.participants.get_mut(&room).expect("held");
        *count -= 1;
        if *count == 0 {
            node.participants.remove(&room);
            node.held_since.remove(&room);
            node.hold_first_tag.remove(&room);
            node.lease_written.remove(&room);
            node.core.as_mut().expect("running").leave_room(&room, linked, now);
            self.drain(n);
        }
    }

    /// A pause of Redis ended at `now` (it resumed, or a flush ended it).
    pub(super) fn pause_ended(&mut self, now: Instant) {
        self.last_pause_end = Some(now);
        if let Some(started) = self.pause_started.take()
            && now - started > Duration::from_millis(crate::membership::BEAT_GAP_MS)
        {
            self.last_long_pause_end = Some(now);
        }
    }

    fn cut_redis(&mut self, n: usize, off: bool) {
        let node = &mut self.nodes[n];
        match (off, node.cut_since) {
            (true, None) => node.cut_since = Some(self.now),
            (false, Some(since)) => {
                node.cut_since = None;
                node.last_cut = Some((since, self.now));
            }
            _ => {}
        }
        self.redis.cut(&node.id, off);
    }
}
