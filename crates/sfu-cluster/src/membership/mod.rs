//! The sans-IO membership core: what this node believes (its record, load, state, the rooms it
//! holds and their sids, the rooms it is leaving, Redis's health) and every Redis command that
//! follows from it. Inputs carry `now`; commands and events are polled (see the crate docs).
//!
//! Rules it keeps (docs/cluster.md):
//! - a beat every [`BEAT_INTERVAL`], at most one in flight: one still pending when the next is
//!   due is skipped, so a paused Redis never piles up beats;
//! - `Join` and `Leave` are idempotent, one per room in flight, and sent again at the next beat
//!   after a failure until answered, or until the room is left (joined) again;
//! - only the first `Leave` of a room may delete its record: a retry, or a later attempt after
//!   `deferred`, could act on stale knowledge of which linked peers hold the room (`rooms.rs`),
//!   so a room not deleted at once is left to the orphan sweep;
//! - the first failure makes the health `Degraded`, the first success after it `Healthy`.

pub mod call;
pub mod command;
pub mod keys;
mod rooms;
pub mod scripts;
mod value;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

pub use call::{DecodeError, ScriptCall};
pub use command::*;
pub use keys::{BEAT_GAP_MS, BEAT_INTERVAL, BEAT_RETRY, ORPHAN_MS, STEADY_MS, SWEEP_ROOMS, TTL_MS};
use rooms::Rooms;
pub use scripts::Script;
use sfu_proto::RoomId;
pub use value::ScriptValue;

use crate::{Health, NodeLoad, NodeRecord, NodeState};

/// Names one [`Membership::join_room`] call in its [`MembershipEvent::Joined`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinId(pub u64);

/// What the core tells its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum MembershipEvent {
    /// The join script answered for a room being joined: its record's sid and the other
    /// holders. Until then the room runs unverified, with the peers the mesh knows.
    Joined {
        /// The call answered.
        id: JoinId,
        /// The room.
        room: RoomId,
        /// The record's sid.
        sid: RoomSid,
        /// Other incarnations holding it.
        peers: Vec<LeaseMember>,
    },
    /// Who holds a room, refreshed by a beat (every fifth, and while a join is unanswered).
    RoomPeers {
        /// The room.
        room: RoomId,
        /// The record's sid (after a flush the first holder to rewrite it chose it).
        sid: RoomSid,
        /// Other incarnations holding it.
        peers: Vec<LeaseMember>,
    },
    /// The live nodes other than this one, after each beat.
    Nodes {
        /// Their keys.
        nodes: Vec<NodeEntry>,
        /// Redis's time at the beat, for the offset of this node's clock to Redis's.
        redis_ms: u64,
    },
    /// A beat found this node's key missing: Redis lost the registry (flushed, or restarted
    /// empty) and the beat wrote it back.
    RegistryRebuilt,
    /// Redis's health changed.
    Health(Health),
    /// The node key, registry entry and leases are gone: the node may exit.
    Unregistered,
}

/// A command sent and not yet answered.
enum Pending {
    Beat,
    Join(RoomId),
    Leave(RoomId),
    Unregister,
}

/// Where the node is in its life in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// End of drain: beats stop; the unregister is sent at each beat time until answered.
    Unregistering {
        in_flight: bool,
    },
    /// Gone from Redis: nothing more is sent (a beat would register the node again).
    Unregistered,
}

/// One node's membership in the cluster, decided without I/O.
pub struct Membership {
    me: NodeRecord,
    lease: LeaseMember,
    load: NodeLoad,
    state: NodeState,
    rooms: Rooms,
    pending: BTreeMap<CmdId, Pending>,
    beat_in_flight: bool,
    /// The state changed while a beat was in flight: beat again as soon as it is answered.
    beat_again: bool,
    next_beat: Instant,
    beats_sent: u64,
    beats_answered: u64,
    phase: Phase,
    health: Health,
    next_cmd: u64,
    next_join: u64,
    commands: VecDeque<(CmdId, RedisCmd)>,
    events: VecDeque<MembershipEvent>,
}

/// Every fifth beat asks who holds each room, catching holders the mesh has not told of.
const HOLDERS_EVERY: u64 = 5;

impl Membership {
    /// A node that has written nothing yet; its first beat is due at once. Health starts
    /// `Degraded`: nothing is confirmed until Redis first answers.
    pub fn new(me: NodeRecord, now: Instant) -> Self {
        let lease = LeaseMember { node: me.node.clone(), boot: me.boot.clone() };
        let rooms = Rooms::new(&me.boot);
        Self {
            me,
            lease,
            load: NodeLoad::default(),
            state: NodeState::Serving,
            rooms,
            pending: BTreeMap::new(),
            beat_in_flight: false,
            beat_again: false,
            next_beat: now,
            beats_sent: 0,
            beats_answered: 0,
            phase: Phase::Running,
            health: Health::Degraded,
            next_cmd: 0,
            next_join: 0,
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// This incarnation's lease member.
    pub fn lease(&self) -> &LeaseMember {
        &self.lease
    }

    /// Redis's health as last seen.
    pub fn health(&self) -> Health {
        self.health
    }

    /// A held room's sid and the other holders last heard from Redis; `None` if not held.
    /// Until a join is answered the sid is the one this node proposes (`RM_{boot}_{n}`): a
    /// driver that cannot wait for Redis starts the room with it.
    pub fn room(&self, room: &RoomId) -> Option<(RoomSid, Vec<LeaseMember>)> {
        self.rooms.held(room).map(|(sid, peers)| (sid.clone(), peers.to_vec()))
    }

    /// The first local participant of `room` arrived. Takes a lease at once; the answer comes
    /// as [`MembershipEvent::Joined`] (at once if the room is held and verified already).
    pub fn join_room(&mut self, room: RoomId, _now: Instant) -> JoinId {
        let id = JoinId(self.next_join);
        self.next_join += 1;
        match self.rooms.join(room.clone(), id) {
            rooms::JoinStep::Answer { sid, peers } => {
                self.events.push_back(MembershipEvent::Joined { id, room, sid, peers });
            }
            rooms::JoinStep::Wait => {}
            rooms::JoinStep::Send(sid) => {
                let cmd = self.send(
                    Pending::Join(room.clone()),
                    RedisCmd::Join { room: room.clone(), lease: self.lease.clone(), sid },
                );
                self.rooms.join_sent(&room, cmd);
            }
        }
        id
    }

    /// The last local participant of `room` left. Ends the lease, and deletes the record unless
    /// another lease is live, `linked_peers_hold_it` (a peer linked to this node says it holds
    /// the room: its lease may have lapsed while it is cut off from Redis), or Redis has not
    /// heard beats steadily of late. A record not deleted now is left to the orphan sweep.
    pub fn leave_room(&mut self, room: &RoomId, linked_peers_hold_it: bool, _now: Instant) {
        if self.rooms.leave(room, !linked_peers_hold_it) {
            self.send_leave(room);
        }
    }

    /// Load to write at the next beat.
    pub fn set_load(&mut self, load: NodeLoad) {
        self.load = load;
    }

    /// A new state, written at once (or as soon as the beat in flight is answered).
    pub fn set_state(&mut self, state: NodeState, now: Instant) {
        if state == self.state {
            return;
        }
        self.state = state;
        if self.beat_in_flight {
            self.beat_again = true;
        } else {
            self.next_beat = now;
        }
    }

    /// End of drain: remove this node from Redis. Rooms still held are left without deleting
    /// their records (the orphan sweep removes them if nobody else holds them).
    pub fn unregister(&mut self, now: Instant) {
        if self.phase == Phase::Running {
            self.phase = Phase::Unregistering { in_flight: false };
        }
        self.next_beat = now;
    }

    /// The answer to command `id`, or why there is none. Answers to commands the core no
    /// longer waits for (a room left since) are ignored.
    pub fn handle_reply(&mut self, id: CmdId, reply: Result<Reply, RedisFailure>, now: Instant) {
        let Some(pending) = self.pending.remove(&id) else { return };
        let reply = match (&pending, reply) {
            (Pending::Beat, Ok(r @ Reply::Beat(_)))
            | (Pending::Join(_), Ok(r @ Reply::Join(_)))
            | (Pending::Leave(_), Ok(r @ Reply::Leave(_)))
            | (Pending::Unregister, Ok(r @ Reply::Unregister(_))) => Ok(r),
            (_, Ok(other)) => Err(RedisFailure::Error(format!("mismatched reply {other:?}"))),
            (_, Err(failure)) => Err(failure),
        };
        self.set_health(if reply.is_ok() { Health::Healthy } else { Health::Degraded });
        if matches!((&pending, &reply), (Pending::Beat, Err(RedisFailure::Disconnected))) {
            // A restarted Redis refuses the first beat on the dead connection, which the client
            // then replaces: beat again soon rather than a whole interval later.
            self.next_beat = self.next_beat.min(now + BEAT_RETRY);
        }
        match (pending, reply) {
            (Pending::Beat, reply) => self.on_beat(reply.ok(), now),
            (Pending::Join(room), Ok(Reply::Join(r))) => {
                for (id, peers) in self.rooms.joined(&room, id, r.sid.clone(), &r.holders, &self.lease) {
                    let (room, sid) = (room.clone(), r.sid.clone());
                    self.events.push_back(MembershipEvent::Joined { id, room, sid, peers });
                }
            }
            (Pending::Join(room), _) => self.rooms.join_failed(&room, id),
            (Pending::Leave(room), Ok(Reply::Leave(outcome))) => self.rooms.left(&room, id, outcome),
            (Pending::Leave(room), _) => self.rooms.leave_failed(&room, id),
            (Pending::Unregister, Ok(_)) => {
                self.phase = Phase::Unregistered;
                self.rooms = Rooms::new(&self.me.boot);
                self.events.push_back(MembershipEvent::Unregistered);
            }
            (Pending::Unregister, Err(_)) => self.phase = Phase::Unregistering { in_flight: false },
        }
    }

    /// Time passed: a beat that is due is sent, with the joins and leaves to retry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_beat {
            return;
        }
        self.next_beat = now + BEAT_INTERVAL;
        match self.phase {
            Phase::Running => {}
            Phase::Unregistering { in_flight: false } => {
                self.phase = Phase::Unregistering { in_flight: true };
                let rooms = self.rooms.for_unregister();
                self.send(Pending::Unregister, RedisCmd::Unregister { lease: self.lease.clone(), rooms });
                return;
            }
            Phase::Unregistering { in_flight: true } | Phase::Unregistered => return,
        }
        if !self.beat_in_flight {
            self.send_beat();
        }
        for (room, sid) in self.rooms.joins_to_retry() {
            let cmd = self.send(
                Pending::Join(room.clone()),
                RedisCmd::Join { room: room.clone(), lease: self.lease.clone(), sid },
            );
            self.rooms.join_sent(&room, cmd);
        }
        for room in self.rooms.leaves_to_retry() {
            self.send_leave(&room);
        }
    }

    /// The next command to send.
    pub fn poll_command(&mut self) -> Option<(CmdId, RedisCmd)> {
        self.commands.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MembershipEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_beat
    }

    fn send(&mut self, pending: Pending, cmd: RedisCmd) -> CmdId {
        let id = CmdId(self.next_cmd);
        self.next_cmd += 1;
        self.pending.insert(id, pending);
        self.commands.push_back((id, cmd));
        id
    }

    fn send_leave(&mut self, room: &RoomId) {
        let Some(may_delete) = self.rooms.may_delete(room) else { return };
        let cmd = RedisCmd::Leave { room: room.clone(), lease: self.lease.clone(), may_delete };
        let id = self.send(Pending::Leave(room.clone()), cmd);
        self.rooms.leave_sent(room, id);
    }

    fn send_beat(&mut self) {
        let all = self.beats_sent.is_multiple_of(HOLDERS_EVERY);
        self.beats_sent += 1;
        self.beat_in_flight = true;
        let cmd = RedisCmd::Beat { lease: self.lease.clone(), fields: self.fields(), rooms: self.rooms.for_beat(all) };
        self.send(Pending::Beat, cmd);
    }

    /// The node key's fields.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let NodeRecord { boot, signal_url, relay_addr, region, .. } = &self.me;
        vec![
            ("boot", boot.to_string()),
            ("state", self.state.as_str().to_owned()),
            ("signal_url", signal_url.clone()),
            ("relay_addr", relay_addr.clone()),
            ("region", region.clone().unwrap_or_default()),
            ("busy", format!("{:.3}", self.load.busy)),
            ("pps", self.load.forwarded_pps.to_string()),
            ("participants", self.load.participants.to_string()),
            ("rooms", self.load.rooms.to_string()),
            ("capacity", self.load.capacity.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ]
    }

    fn on_beat(&mut self, reply: Option<Reply>, now: Instant) {
        self.beat_in_flight = false;
        if std::mem::take(&mut self.beat_again) {
            self.next_beat = now;
        }
        let Some(Reply::Beat(beat)) = reply else { return };
        if !beat.key_existed && self.beats_answered > 0 {
            self.events.push_back(MembershipEvent::RegistryRebuilt);
        }
        self.beats_answered += 1;
        for holders in beat.rooms {
            if let Some(peers) = self.rooms.refreshed(&holders, &self.lease) {
                let RoomHolders { room, sid, .. } = holders;
                self.events.push_back(MembershipEvent::RoomPeers { room, sid, peers });
            }
        }
        let nodes = beat.nodes.into_iter().filter(|n| n.node != self.me.node).collect();
        self.events.push_back(MembershipEvent::Nodes { nodes, redis_ms: beat.redis_ms });
    }

    fn set_health(&mut self, health: Health) {
        if health != self.health {
            self.health = health;
            self.events.push_back(MembershipEvent::Health(health));
        }
    }
}

#[cfg(test)]
mod tests;
