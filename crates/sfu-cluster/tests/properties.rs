//! Random schedules of joins, leaves, kills, restarts, cuts, flushes and pauses against the
//! Sim, which checks the four invariants of docs/cluster.md as it goes. proptest shrinks a
//! failing schedule to a short one.
//!
//! Two properties: every kind of step over three nodes and rooms, and a dense one of two nodes
//! that start out sharing one room, where a broken lease rule (the steady rule, the linked-peer
//! rule) shows within a few dozen cases.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use sfu_cluster::testing::{Op, Sim, SimConfig};

fn any_step(nodes: usize, rooms: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..3000).prop_map(Op::Advance),
        // Now and then a long wait, so minute-scale rules (the orphan sweep, a node cut off for
        // over a minute) come into play within a short schedule.
        1 => (20_000u64..70_000).prop_map(Op::Advance),
        5 => (0..nodes, 0..rooms).prop_map(|(n, r)| Op::Join(n, r)),
        4 => (0..nodes, 0..rooms).prop_map(|(n, r)| Op::Leave(n, r)),
        1 => (0..nodes).prop_map(Op::Kill),
        1 => (0..nodes).prop_map(Op::Restart),
        2 => (0..nodes, any::<bool>()).prop_map(|(n, off)| Op::CutRedis(n, off)),
        2 => (0..nodes, 0..nodes, any::<bool>()).prop_map(|(a, b, off)| Op::CutPeers(a, b, off)),
        1 => Just(Op::Flush),
        1 => (1u64..35_000).prop_map(Op::Pause),
    ]
}

/// Two nodes, one room, the steps that decide its record.
fn lease_step() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Mostly within a beat, as races between a flush or pause and the next beat need;
        // sometimes past a lease's life.
        4 => (1u64..1500).prop_map(Op::Advance),
        2 => (5000u64..9000).prop_map(Op::Advance),
        4 => (0..2usize).prop_map(|n| Op::Join(n, 0)),
        3 => (0..2usize).prop_map(|n| Op::Leave(n, 0)),
        3 => (0..2usize).prop_map(|n| Op::CutRedis(n, true)),
        1 => (0..2usize).prop_map(|n| Op::CutRedis(n, false)),
        1 => any::<bool>().prop_map(|off| Op::CutPeers(0, 1, off)),
        2 => Just(Op::Flush),
        2 => (1u64..12_000).prop_map(Op::Pause),
    ]
}

/// Runs `ops`, then heals everything and runs `heal` more (longer than any pause left).
fn run(cfg: SimConfig, ops: &[Op], heal: Duration) -> Vec<String> {
    let mut sim = Sim::new(cfg);
    for op in ops {
        sim.apply(op);
        if !sim.violations().is_empty() {
            return sim.violations().to_vec();
        }
    }
    // Everything heals (a pause runs out): the rebuild and death checks must now come true.
    sim.heal_and_run(heal);
    sim.violations().to_vec()
}

/// `default` cases (a few seconds here), or `PROPTEST_CASES` to search deeper by hand.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_keep_the_invariants(skew_ms in -10_000i64..10_000, ops in vec(any_step(3, 3), 1..50)) {
        let violations = run(SimConfig { nodes: 3, skew_ms, ..SimConfig::default() }, &ops, Duration::from_secs(45));
        prop_assert!(violations.is_empty(), "{violations:#?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn two_nodes_sharing_a_room_never_lose_it(
        skew_ms in -10_000i64..10_000,
        linked in any::<bool>(),
        ops in vec(lease_step(), 1..30),
    ) {
        // Both hold the room and Redis knows it; linked or not, as the steady rule guards
        // unlinked holders and the linked-peer rule linked ones.
        let mut schedule = vec![Op::Join(0, 0), Op::Join(1, 0), Op::Advance(2500), Op::CutPeers(0, 1, !linked)];
        schedule.extend(ops);
        let violations = run(SimConfig { nodes: 2, skew_ms, ..SimConfig::default() }, &schedule, Duration::from_secs(15));
        prop_assert!(violations.is_empty(), "{violations:#?}");
    }
}
