//! Random schedules of joins, leaves, kills, restarts, cuts, flushes and pauses against the
//! Sim, which checks the four invariants of docs/cluster.md as it goes. proptest shrinks a
//! failing schedule to a short one.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use sfu_cluster::testing::{Op, Sim, SimConfig};

const NODES: usize = 3;
const ROOMS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..3000).prop_map(Op::Advance),
        // Now and then a long wait, so minute-scale rules (the orphan sweep, a node cut off for
        // over a minute) come into play within a short schedule.
        1 => (20_000u64..70_000).prop_map(Op::Advance),
        5 => (0..NODES, 0..ROOMS).prop_map(|(n, r)| Op::Join(n, r)),
        4 => (0..NODES, 0..ROOMS).prop_map(|(n, r)| Op::Leave(n, r)),
        1 => (0..NODES).prop_map(Op::Kill),
        1 => (0..NODES).prop_map(Op::Restart),
        2 => (0..NODES, any::<bool>()).prop_map(|(n, off)| Op::CutRedis(n, off)),
        2 => (0..NODES, 0..NODES, any::<bool>()).prop_map(|(a, b, off)| Op::CutPeers(a, b, off)),
        1 => Just(Op::Flush),
        1 => (1u64..35_000).prop_map(Op::Pause),
    ]
}

fn run(skew_ms: i64, ops: &[Op]) -> Vec<String> {
    let mut sim = Sim::new(SimConfig { skew_ms, ..SimConfig::default() });
    for op in ops {
        sim.apply(op);
        if !sim.violations().is_empty() {
            return sim.violations().to_vec();
        }
    }
    // Everything heals: the rebuild and death checks must now come true.
    sim.heal_and_run(Duration::from_secs(45));
    sim.violations().to_vec()
}

/// 192 cases take about two seconds here; `PROPTEST_CASES=20000` searches deeper by hand.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(192)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_keep_the_invariants(skew_ms in -10_000i64..10_000, ops in vec(op(), 1..50)) {
        let violations = run(skew_ms, &ops);
        prop_assert!(violations.is_empty(), "{violations:#?}");
    }
}
