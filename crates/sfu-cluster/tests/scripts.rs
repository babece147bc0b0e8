//! The scripts' rules, run on FakeRedis (whose Rust mirrors sit beside the Lua in
//! `membership::scripts`), through the same encoder and decoder the real Redis will use.

use std::time::{Duration, Instant};

use sfu_cluster::membership::{BeatRoom, LeaseMember, LeaveOutcome, RedisCmd, Reply, RoomSid, keys};
use sfu_cluster::testing::{FakeClock, FakeRedis, Job};
use sfu_cluster::{BootId, NodeId};
use sfu_proto::RoomId;

struct Bench {
    redis: FakeRedis,
    t0: Instant,
}

fn member(name: &str) -> LeaseMember {
    LeaseMember { node: NodeId(format!("ND_{name}")), boot: BootId(format!("BT{name}")) }
}

fn room() -> RoomId {
    RoomId::from("r")
}

impl Bench {
    fn new() -> Self {
        let t0 = Instant::now();
        Self { redis: FakeRedis::new(FakeClock::new(t0, 0)), t0 }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn run(&mut self, ms: u64, cmd: RedisCmd) -> Reply {
        let job = Job { from: cmd.sender().clone(), tag: 0, call: cmd.to_call() };
        let value = self.redis.run(&job, self.at(ms));
        job.call.script.decode(&value).expect("the fake answers what the decoder reads")
    }

    fn beat(&mut self, ms: u64, who: &str, rooms: &[&str]) -> Reply {
        let rooms = rooms
            .iter()
            .map(|r| BeatRoom { room: RoomId::from(*r), sid: RoomSid(format!("RM_{who}")), want_holders: true })
            .collect();
        let fields = vec![("boot", member(who).boot.0), ("state", "serving".to_owned())];
        self.run(ms, RedisCmd::Beat { lease: member(who), fields, rooms })
    }

    fn join(&mut self, ms: u64, who: &str) -> Reply {
        self.run(ms, RedisCmd::Join { room: room(), lease: member(who), sid: RoomSid(format!("RM_{who}")) })
    }

    fn leave(&mut self, ms: u64, who: &str, may_delete: bool) -> LeaveOutcome {
        match self.run(ms, RedisCmd::Leave { room: room(), lease: member(who), may_delete }) {
            Reply::Leave(outcome) => outcome,
            other => panic!("{other:?}"),
        }
    }

    fn record(&self, ms: u64) -> Option<String> {
        let now = self.redis.clock().redis_ms(self.at(ms));
        self.redis.keyspace().peek_hash(&keys::room_key(&room()), now).and_then(|h| h.get("sid").cloned())
    }

    fn no_violations(&self) {
        assert!(self.redis.keyspace().violations.is_empty(), "{:?}", self.redis.keyspace().violations);
    }
}

#[test]
fn a_leave_is_deferred_until_beats_have_been_steady_for_a_lease_life() {
    let mut b = Bench::new();
    b.beat(0, "a", &[]);
    b.join(100, "a");
    assert_eq!(b.leave(200, "a", true), LeaveOutcome::Deferred, "beats heard for 200 ms only");
    for ms in [2000, 4000, 6000] {
        b.beat(ms, "a", &[]);
    }
    assert_eq!(b.leave(6100, "a", true), LeaveOutcome::Deleted);
    assert_eq!(b.record(6100), None);
    b.no_violations();
}

#[test]
fn a_gap_between_beats_restarts_the_steady_clock() {
    let mut b = Bench::new();
    for ms in (0..=8000).step_by(2000) {
        b.beat(ms, "a", &["r"]);
        b.beat(ms, "b", &["r"]);
    }
    // Redis stopped from 8 s to 20 s: every lease lapsed by its clock, yet the nodes live.
    assert_eq!(b.leave(20_000, "a", true), LeaveOutcome::Deferred, "a leave that waited out the pause");
    b.beat(20_001, "a", &[]);
    assert_eq!(b.leave(20_002, "a", true), LeaveOutcome::Deferred, "b has not beaten since");
    b.beat(21_000, "b", &["r"]);
    assert_eq!(b.leave(21_001, "a", true), LeaveOutcome::Held);
    assert_eq!(b.record(21_001).as_deref(), Some("RM_a"));
    b.no_violations();
}

#[test]
fn a_live_lease_or_a_linked_peer_keeps_the_record() {
    let mut b = Bench::new();
    for ms in (0..=6000).step_by(2000) {
        b.beat(ms, "a", &[]);
    }
    b.join(6000, "a");
    b.join(6000, "b");
    assert_eq!(b.leave(6100, "a", true), LeaveOutcome::Held);
    for ms in (8000..=14_000).step_by(2000) {
        b.beat(ms, "a", &[]);
    }
    // b's lease lapsed at 12 s (cut off from Redis), but it told a it holds the room.
    b.join(14_000, "a");
    assert_eq!(b.leave(14_100, "a", false), LeaveOutcome::Kept);
    assert_eq!(b.record(14_100).as_deref(), Some("RM_a"));
    b.no_violations();
}

#[test]
fn the_first_sid_wins_and_a_join_names_the_holders() {
    let mut b = Bench::new();
    let Reply::Join(first) = b.join(0, "a") else { panic!() };
    let Reply::Join(second) = b.join(10, "b") else { panic!() };
    assert_eq!((first.sid.0.as_str(), second.sid.0.as_str()), ("RM_a", "RM_a"));
    assert_eq!(second.holders, [member("a"), member("b")]);
    let Reply::Join(later) = b.join(6011, "b") else { panic!() };
    assert_eq!(later.holders, [member("b")], "a's lease expired at 6 s");
}

#[test]
fn a_beat_rebuilds_what_a_flush_lost() {
    let mut b = Bench::new();
    b.join(0, "a");
    b.beat(0, "a", &["r"]);
    b.redis.flush();
    let Reply::Beat(beat) = b.beat(2000, "a", &["r"]) else { panic!() };
    assert!(!beat.key_existed);
    assert_eq!(beat.nodes.len(), 1);
    assert_eq!(beat.nodes[0].node, member("a").node);
    assert_eq!(beat.rooms[0].sid.0, "RM_a");
    assert_eq!(beat.rooms[0].holders, [member("a")]);
    assert_eq!(b.record(2000).as_deref(), Some("RM_a"));
}

#[test]
fn the_orphan_sweep_waits_a_minute_after_the_last_lease() {
    let mut b = Bench::new();
    b.join(0, "a");
    b.beat(0, "a", &["r"]);
    // a dies; b beats on, holding nothing. a's lease expired at 6 s.
    for ms in (2000..=66_000).step_by(2000) {
        b.beat(ms, "b", &[]);
    }
    assert!(b.record(66_000).is_some(), "expired exactly a minute ago");
    b.beat(68_000, "b", &[]);
    assert_eq!(b.record(68_000), None);
    b.no_violations();
}

#[test]
fn a_beat_lists_live_nodes_only_and_unregister_removes_one_at_once() {
    let mut b = Bench::new();
    b.beat(0, "a", &[]);
    b.beat(0, "c", &[]);
    b.beat(5000, "b", &[]);
    let Reply::Beat(beat) = b.beat(6001, "b", &[]) else { panic!() };
    assert_eq!(beat.nodes.iter().map(|n| n.node.0.as_str()).collect::<Vec<_>>(), ["ND_b"]);
    b.beat(7000, "a", &[]);
    b.join(7000, "a");
    let unregister = RedisCmd::Unregister { lease: member("a"), rooms: vec![(room(), true)] };
    // The gap from 0 to 5 s restarted the steady clock: the record waits.
    assert_eq!(b.run(7001, unregister), Reply::Unregister(vec![LeaveOutcome::Deferred]));
    let Reply::Beat(beat) = b.beat(7002, "b", &[]) else { panic!() };
    assert_eq!(beat.nodes.len(), 1);
    b.no_violations();
}

#[test]
fn writing_another_nodes_entries_is_caught() {
    let mut b = Bench::new();
    let forged = RedisCmd::Join { room: room(), lease: member("b"), sid: RoomSid("RM_b".into()) };
    let job = Job { from: member("a"), tag: 0, call: forged.to_call() };
    b.redis.run(&job, b.at(0));
    assert!(!b.redis.keyspace().violations.is_empty(), "a wrote b's lease");
}

#[test]
fn joins_and_leaves_can_be_sent_twice() {
    let mut b = Bench::new();
    for ms in (0..=6000).step_by(2000) {
        b.beat(ms, "a", &[]);
    }
    let Reply::Join(first) = b.join(6000, "a") else { panic!() };
    let Reply::Join(again) = b.join(6001, "a") else { panic!() };
    assert_eq!((first.sid, again.holders), (RoomSid("RM_a".into()), vec![member("a")]));
    assert_eq!(b.leave(6002, "a", true), LeaveOutcome::Deleted);
    assert_eq!(b.leave(6003, "a", true), LeaveOutcome::Deleted, "nothing left to delete: the same answer");
    assert_eq!(b.record(6003), None);
    b.no_violations();
}

#[test]
fn a_leave_after_a_flush_leaves_no_stray_lease_set() {
    let mut b = Bench::new();
    b.join(0, "a");
    b.redis.flush();
    assert_eq!(b.leave(100, "a", false), LeaveOutcome::Kept);
    assert!(b.redis.keyspace().peek_zset(&keys::leases_key(&room())).is_none());
}
