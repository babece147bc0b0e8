//! The core's rules one by one, with hand-made answers (the scripts' own rules are tested on
//! FakeRedis in tests/scripts.rs, the whole under random schedules in tests/properties.rs).

use std::time::{Duration, Instant};

use sfu_proto::RoomId;

use super::*;
use crate::{BootId, NodeId};

fn record() -> NodeRecord {
    NodeRecord {
        node: NodeId::from("ND_a"),
        boot: BootId::from("BTa"),
        signal_url: "http://a".into(),
        relay_addr: "a:7882".into(),
        region: None,
    }
}

fn other() -> LeaseMember {
    LeaseMember { node: NodeId::from("ND_b"), boot: BootId::from("BTb") }
}

fn commands(core: &mut Membership) -> Vec<(CmdId, RedisCmd)> {
    std::iter::from_fn(|| core.poll_command()).collect()
}

fn events(core: &mut Membership) -> Vec<MembershipEvent> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn beat_reply(existed: bool) -> Result<Reply, RedisFailure> {
    Ok(Reply::Beat(BeatReply { redis_ms: 1, key_existed: existed, nodes: Vec::new(), rooms: Vec::new() }))
}

fn join_reply(sid: &str, holders: Vec<LeaseMember>) -> Result<Reply, RedisFailure> {
    Ok(Reply::Join(JoinReply { redis_ms: 1, sid: RoomSid(sid.into()), holders }))
}

fn only<'a>(cmds: &'a [(CmdId, RedisCmd)], what: &str, pick: impl Fn(&RedisCmd) -> bool) -> &'a (CmdId, RedisCmd) {
    let found: Vec<_> = cmds.iter().filter(|(_, c)| pick(c)).collect();
    assert_eq!(found.len(), 1, "one {what} in {cmds:?}");
    found[0]
}

const BEAT: Duration = BEAT_INTERVAL;

#[test]
fn at_most_one_beat_is_in_flight() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    assert_eq!(core.poll_timeout(), t0, "the first beat is due at once");
    core.handle_timeout(t0);
    let first = commands(&mut core);
    let (beat, _) = only(&first, "beat", |c| matches!(c, RedisCmd::Beat { .. }));

    // Redis hangs past the next beat time: that beat is skipped, not queued.
    core.handle_timeout(t0 + BEAT);
    assert!(commands(&mut core).is_empty());
    core.handle_reply(*beat, Err(RedisFailure::Timeout), t0 + BEAT + Duration::from_millis(1));
    assert!(commands(&mut core).is_empty(), "a failed beat waits for its time");
    core.handle_timeout(t0 + 2 * BEAT);
    only(&commands(&mut core), "beat", |c| matches!(c, RedisCmd::Beat { .. }));
}

#[test]
fn health_turns_degraded_on_the_first_failure_and_healthy_on_the_first_success() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    assert_eq!(core.health(), Health::Degraded, "nothing confirmed yet");
    let mut t = t0;
    let mut answer = |core: &mut Membership, reply| {
        core.handle_timeout(t);
        let (id, _) = commands(core).remove(0);
        core.handle_reply(id, reply, t);
        t += BEAT;
        events(core).into_iter().filter(|e| matches!(e, MembershipEvent::Health(_))).collect::<Vec<_>>()
    };
    assert_eq!(answer(&mut core, beat_reply(false)), [MembershipEvent::Health(Health::Healthy)]);
    assert_eq!(answer(&mut core, beat_reply(true)), []);
    assert_eq!(answer(&mut core, Err(RedisFailure::Timeout)), [MembershipEvent::Health(Health::Degraded)]);
    assert_eq!(answer(&mut core, Err(RedisFailure::Disconnected)), []);
    assert_eq!(answer(&mut core, beat_reply(true)), [MembershipEvent::Health(Health::Healthy)]);
}

#[test]
fn a_failed_join_is_sent_again_at_the_next_beat_and_answered_once() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let room = RoomId::from("r");
    let join = core.join_room(room.clone(), t0);
    let cmds = commands(&mut core);
    let (first, cmd) = only(&cmds, "join", |c| matches!(c, RedisCmd::Join { .. })).clone();
    let RedisCmd::Join { sid: proposed, .. } = cmd else { unreachable!() };
    core.handle_reply(first, Err(RedisFailure::Timeout), t0);
    assert!(commands(&mut core).is_empty(), "not sent again before the beat");

    core.handle_timeout(t0);
    let cmds = commands(&mut core);
    let (again, cmd) = only(&cmds, "join", |c| matches!(c, RedisCmd::Join { .. })).clone();
    assert!(matches!(cmd, RedisCmd::Join { sid, .. } if sid == proposed), "the same proposal: idempotent");
    let (_, beat) = only(&cmds, "beat", |c| matches!(c, RedisCmd::Beat { .. }));
    assert!(
        matches!(beat, RedisCmd::Beat { rooms, .. } if rooms.len() == 1 && rooms[0].want_holders),
        "the beat keeps the lease alive meanwhile and asks who holds the unanswered room"
    );

    core.handle_reply(again, join_reply("RM_x", vec![other(), core.lease().clone()]), t0);
    let joined: Vec<_> =
        events(&mut core).into_iter().filter(|e| matches!(e, MembershipEvent::Joined { .. })).collect();
    assert_eq!(
        joined,
        [MembershipEvent::Joined { id: join, room: room.clone(), sid: RoomSid("RM_x".into()), peers: vec![other()] }]
    );
    core.handle_reply(first, join_reply("RM_y", vec![]), t0);
    assert!(events(&mut core).is_empty(), "an answer nobody waits for is ignored");

    // A second join of a held, verified room is answered at once.
    let second = core.join_room(room.clone(), t0);
    assert!(commands(&mut core).is_empty());
    assert_eq!(
        events(&mut core),
        [MembershipEvent::Joined { id: second, room, sid: RoomSid("RM_x".into()), peers: vec![other()] }]
    );
}

#[test]
fn a_failed_leave_is_sent_again_but_only_the_first_may_delete() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let room = RoomId::from("r");
    core.join_room(room.clone(), t0);
    commands(&mut core);
    core.leave_room(&room, false, t0);
    let cmds = commands(&mut core);
    let (first, _) = only(&cmds, "leave", |c| matches!(c, RedisCmd::Leave { may_delete: true, .. }));
    core.handle_reply(*first, Err(RedisFailure::Timeout), t0);
    assert!(commands(&mut core).is_empty(), "not sent again before the beat");

    core.handle_timeout(t0);
    let cmds = commands(&mut core);
    assert!(matches!(&cmds[0].1, RedisCmd::Beat { rooms, .. } if rooms.is_empty()), "the room is no longer held");
    let (second, _) = only(&cmds, "leave", |c| matches!(c, RedisCmd::Leave { may_delete: false, .. }));
    core.handle_reply(*second, Err(RedisFailure::Disconnected), t0);

    core.handle_timeout(t0 + BEAT);
    let cmds = commands(&mut core);
    let (third, _) = only(&cmds, "leave", |c| matches!(c, RedisCmd::Leave { may_delete: false, .. }));
    core.handle_reply(*third, Ok(Reply::Leave(LeaveOutcome::Kept)), t0 + BEAT);

    core.handle_timeout(t0 + 2 * BEAT);
    assert!(!commands(&mut core).iter().any(|(_, c)| matches!(c, RedisCmd::Leave { .. })), "done");
}

#[test]
fn a_deferred_leave_is_not_sent_again() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let room = RoomId::from("r");
    core.join_room(room.clone(), t0);
    commands(&mut core);
    core.leave_room(&room, false, t0);
    let (leave, _) = commands(&mut core).remove(0);
    core.handle_reply(leave, Ok(Reply::Leave(LeaveOutcome::Deferred)), t0);
    core.handle_timeout(t0 + BEAT);
    assert!(
        !commands(&mut core).iter().any(|(_, c)| matches!(c, RedisCmd::Leave { .. })),
        "the record is left to the orphan sweep"
    );
}

#[test]
fn joining_again_cancels_a_pending_leave_and_keeps_the_sid() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let room = RoomId::from("r");
    core.join_room(room.clone(), t0);
    let (join, _) = commands(&mut core).remove(0);
    core.handle_reply(join, join_reply("RM_x", vec![]), t0);
    core.leave_room(&room, false, t0);
    let (leave, _) = commands(&mut core).remove(0);
    core.handle_reply(leave, Err(RedisFailure::Timeout), t0);

    core.join_room(room.clone(), t0);
    let cmds = commands(&mut core);
    let (_, cmd) = only(&cmds, "join", |c| matches!(c, RedisCmd::Join { .. }));
    assert!(matches!(cmd, RedisCmd::Join { sid, .. } if sid.0 == "RM_x"), "a deleted record comes back as it was");
    core.handle_timeout(t0);
    assert!(!commands(&mut core).iter().any(|(_, c)| matches!(c, RedisCmd::Leave { .. })), "the leave is off");
}

#[test]
fn a_linked_peer_holding_the_room_stops_the_compare_and_delete() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let room = RoomId::from("r");
    core.join_room(room.clone(), t0);
    commands(&mut core);
    core.leave_room(&room, true, t0);
    only(&commands(&mut core), "leave", |c| matches!(c, RedisCmd::Leave { may_delete: false, .. }));
}

#[test]
fn a_new_state_is_written_at_once_or_right_after_the_beat_in_flight() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    core.handle_timeout(t0);
    let (beat, _) = commands(&mut core).remove(0);
    let t1 = t0 + Duration::from_millis(300);
    core.set_state(NodeState::Draining, t1);
    core.handle_reply(beat, beat_reply(false), t1);
    assert_eq!(core.poll_timeout(), t1, "beat again at once");
    core.handle_timeout(t1);
    let (_, cmd) = commands(&mut core).remove(0);
    assert!(matches!(cmd, RedisCmd::Beat { fields, .. } if fields.contains(&("state", "draining".into()))));

    let t2 = t1 + Duration::from_millis(10);
    core.set_state(NodeState::Serving, t2);
    assert_eq!(core.poll_timeout(), t1 + BEAT, "a beat is in flight: no second one");
}

#[test]
fn a_missing_node_key_after_the_first_beat_means_the_registry_was_rebuilt() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    let beat = |core: &mut Membership, existed, t| {
        core.handle_timeout(t);
        let (id, _) = commands(core).remove(0);
        core.handle_reply(id, beat_reply(existed), t);
        events(core).contains(&MembershipEvent::RegistryRebuilt)
    };
    assert!(!beat(&mut core, false, t0), "a new boot's key is missing by nature");
    assert!(!beat(&mut core, true, t0 + BEAT));
    assert!(beat(&mut core, false, t0 + 2 * BEAT));
}

#[test]
fn every_fifth_beat_asks_who_holds_each_room() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    core.join_room(RoomId::from("r"), t0);
    let (join, _) = commands(&mut core).remove(0);
    core.handle_reply(join, join_reply("RM_x", vec![]), t0);
    let asks: Vec<bool> = (0..6)
        .map(|i| {
            let t = t0 + BEAT * i;
            core.handle_timeout(t);
            let (id, cmd) = commands(&mut core).remove(0);
            core.handle_reply(id, beat_reply(true), t);
            matches!(cmd, RedisCmd::Beat { rooms, .. } if rooms[0].want_holders)
        })
        .collect();
    assert_eq!(asks, [true, false, false, false, false, true]);
}

#[test]
fn unregister_stops_beats_and_leaves_held_rooms_without_deleting() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    core.join_room(RoomId::from("r"), t0);
    commands(&mut core);
    core.unregister(t0);
    core.handle_timeout(t0);
    let cmds = commands(&mut core);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let (id, cmd) = &cmds[0];
    assert!(matches!(cmd, RedisCmd::Unregister { rooms, .. } if rooms == &[(RoomId::from("r"), false)]));
    core.handle_reply(*id, Ok(Reply::Unregister(vec![LeaveOutcome::Kept])), t0);
    assert!(events(&mut core).contains(&MembershipEvent::Unregistered));
    core.handle_timeout(t0 + BEAT);
    assert!(commands(&mut core).is_empty(), "a beat now would register the node again");
}

#[test]
fn a_beat_that_found_the_connection_down_is_sent_again_soon_and_a_timeout_waits_its_turn() {
    let t0 = Instant::now();
    let mut core = Membership::new(record(), t0);
    core.handle_timeout(t0);
    let first = commands(&mut core);
    let (beat, _) = only(&first, "beat", |c| matches!(c, RedisCmd::Beat { .. }));
    let failed_at = t0 + Duration::from_millis(10);
    core.handle_reply(*beat, Err(RedisFailure::Disconnected), failed_at);
    assert_eq!(core.poll_timeout(), failed_at + BEAT_RETRY);
    core.handle_timeout(failed_at + BEAT_RETRY);
    let again = commands(&mut core);
    let (beat, _) = only(&again, "beat", |c| matches!(c, RedisCmd::Beat { .. }));

    // A paused Redis (timeouts) gets no extra beats.
    let timed_out_at = failed_at + BEAT_RETRY + Duration::from_secs(1);
    core.handle_reply(*beat, Err(RedisFailure::Timeout), timed_out_at);
    assert!(core.poll_timeout() > timed_out_at + BEAT_RETRY);
}
