//! RFC 8867 test cases in virtual time, with the RFC 8868-style figures asserted:
//!
//! * after a capacity drop, the send rate is below the new capacity within 1 s;
//! * after a rise, the media rate reaches 85 % of the new capacity within 5 s;
//! * mean queuing delay under 100 ms;
//! * utilization at least 80 % over each steady phase (a phase minus its first 5 s);
//! * Jain fairness at least 0.9 once all flows of 5.4 run.
//!
//! Each case writes `target/bwe/<case>.csv` and `target/bwe/<case>.png`.
//! Run with `cargo test -p sfu-bwe --release -- --nocapture` to see the tables.

mod common;

use std::time::{Duration, Instant};

use sfu_bwe::Bitrate;
use sfu_bwe::sim::{self, CapacitySchedule, FlowConfig, LinkConfig, Report, Scenario, jain_index};

/// Seconds a phase is given to settle before its utilization counts.
const SETTLE_S: f64 = 5.0;

fn link(steps: &[(u64, u64)]) -> LinkConfig {
    LinkConfig {
        capacity: CapacitySchedule::steps_kbps(steps),
        one_way_delay: Duration::from_millis(50),
        queue_limit: Duration::from_millis(300),
        loss: 0.0,
        feedback_delay: Duration::from_millis(50),
    }
}

fn flow(start_s: u64) -> FlowConfig {
    FlowConfig { start: Duration::from_secs(start_s), max_rate: Bitrate::mbps(4), ..FlowConfig::default() }
}

fn scenario(name: &str, secs: u64, link: LinkConfig, flows: Vec<FlowConfig>) -> Scenario {
    Scenario {
        name: name.to_string(),
        seed: 8867,
        duration: Duration::from_secs(secs),
        link,
        flows,
        sample_interval: Duration::from_millis(100),
    }
}

/// Phase boundaries `(from, to, capacity bps)` of a capacity schedule over `secs`.
fn phases(steps: &[(u64, u64)], extra_cuts: &[u64], secs: u64) -> Vec<(f64, f64, f64)> {
    let mut cuts: Vec<u64> = steps.iter().map(|s| s.0).chain(extra_cuts.iter().copied()).collect();
    cuts.push(secs);
    cuts.sort();
    cuts.dedup();
    let cap = CapacitySchedule::steps_kbps(steps);
    cuts.windows(2).map(|w| (w[0] as f64, w[1] as f64, cap.at(Duration::from_secs(w[0])).as_f64())).collect()
}

/// Run, write artefacts, print and check the figures. Returns the report for extra checks.
fn run_case(s: &Scenario, steps: &[(u64, u64)], joins: &[u64]) -> Report {
    let report = sim::run(s, Instant::now());
    common::write_artifacts(&report);
    let secs = s.duration.as_secs();
    let mut failures = Vec::new();

    println!("\n== {} ==", s.name);
    println!("mean queuing delay: {:.1} ms, bottleneck drops: {}", report.mean_queuing_ms(), report.drops);
    if report.mean_queuing_ms() >= 100.0 {
        failures.push(format!("mean queuing delay {:.1} ms", report.mean_queuing_ms()));
    }
    for w in steps.windows(2) {
        let (at, before, after) = (w[1].0 as f64, w[0].1 as f64 * 1e3, w[1].1 as f64 * 1e3);
        if after < before {
            let t = report.drop_reaction(at, after);
            println!(
                "drop  {:>4.1} -> {:>4.1} Mbit/s at {at:>5.1} s: send rate below capacity after {}",
                before / 1e6,
                after / 1e6,
                fmt_s(t)
            );
            if t.is_none_or(|t| t > 1.0) {
                failures.push(format!("drop at {at}: {t:?}"));
            }
        } else {
            let t = report.rise_time(at, after, 0.85);
            println!(
                "rise  {:>4.1} -> {:>4.1} Mbit/s at {at:>5.1} s: 85 % of capacity after {}",
                before / 1e6,
                after / 1e6,
                fmt_s(t)
            );
            if t.is_none_or(|t| t > 5.0) {
                failures.push(format!("rise at {at}: {t:?}"));
            }
        }
    }
    for (from, to, cap) in phases(steps, joins, secs) {
        let u = report.utilization(from + SETTLE_S, to);
        let rates = report.flow_rates(from + SETTLE_S, to);
        let rates: Vec<String> = rates.iter().map(|r| format!("{:.2}", r / 1e6)).collect();
        println!(
            "phase {from:>5.1}-{to:>5.1} s at {:.2} Mbit/s: utilization {:>5.1} %, queuing {:>5.1} ms, flows [{}] Mbit/s",
            cap / 1e6,
            u * 100.0,
            report.queuing_ms_in(from + SETTLE_S, to),
            rates.join(", ")
        );
        if u < 0.8 {
            failures.push(format!("utilization {:.1} % in {from}-{to}", u * 100.0));
        }
    }
    for (i, st) in report.stats.iter().enumerate() {
        println!(
            "flow {i}: probes sent {}, raised the estimate {}, unmeasurable {}, feedback reports {}",
            st.probes_sent, st.probes_succeeded, st.probes_failed, st.feedback_reports
        );
    }
    assert!(failures.is_empty(), "{}: {failures:?}", s.name);
    report
}

fn fmt_s(t: Option<f64>) -> String {
    t.map_or("never".to_string(), |t| format!("{t:.1} s"))
}

#[test]
fn case_5_1_single_flow_variable_capacity() {
    let steps = [(0, 1000), (40, 2500), (60, 600), (80, 1000)];
    let s = scenario("rfc8867_5_1", 100, link(&steps), vec![flow(0)]);
    run_case(&s, &steps, &[]);
}

#[test]
fn case_5_2_two_flows_variable_capacity() {
    let steps = [(0, 4000), (25, 2000), (50, 3500), (75, 1000), (100, 2000)];
    let s = scenario("rfc8867_5_2", 125, link(&steps), vec![flow(0), flow(0)]);
    run_case(&s, &steps, &[]);
}

#[test]
fn case_5_4_three_flows_joining() {
    let steps = [(0, 3500)];
    let s = scenario("rfc8867_5_4", 120, link(&steps), vec![flow(0), flow(20), flow(40)]);
    let report = run_case(&s, &steps, &[20, 40]);
    let rates = report.flow_rates(50.0, 120.0);
    let j = jain_index(&rates);
    println!("Jain fairness 50-120 s: {j:.3}");
    assert!(j >= 0.9, "Jain index {j:.3} with rates {rates:?}");
}
