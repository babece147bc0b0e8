use std::time::{Duration, Instant};

use super::*;
use crate::test_rng::Lcg;

const VIDEO_CLOCK: u32 = 90_000;

/// One call on the munger, with what it should answer.
#[derive(Clone, Copy, Debug)]
enum Step {
    Switch { seq: u16, ts: u32, at_ms: u64 },
    Forward { seq: u16, ts: u32, at_ms: u64, expect: Result<(u16, u32), DropReason> },
    Skip(u16),
}

fn switch(seq: u16, ts: u32, at_ms: u64) -> Step {
    Step::Switch { seq, ts, at_ms }
}

fn fwd(seq: u16, ts: u32, at_ms: u64, out_seq: u16, out_ts: u32) -> Step {
    Step::Forward { seq, ts, at_ms, expect: Ok((out_seq, out_ts)) }
}

fn rejected(seq: u16, ts: u32, reason: DropReason) -> Step {
    Step::Forward { seq, ts, at_ms: 0, expect: Err(reason) }
}

fn skip(seq: u16) -> Step {
    Step::Skip(seq)
}

fn run(name: &str, steps: &[Step]) {
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut munger = RtpMunger::new(VIDEO_CLOCK);
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Switch { seq, ts, at_ms } => munger.switch_to(seq, ts, at(at_ms)),
            Step::Skip(seq) => munger.skip(seq),
            Step::Forward { seq, ts, at_ms, expect } => {
                assert_eq!(munger.forward(seq, ts, at(at_ms)), expect, "{name}: step {i} {step:?}");
            }
        }
    }
}

#[test]
fn scripted_cases() {
    use DropReason::{Duplicate, OutOfOrderTooOld};
    let max = u32::MAX;
    let far = REORDER_WINDOW as u16 + 100;
    const JUMP: u16 = MAX_OUTPUT_JUMP as u16;
    let cases: &[(&str, &[Step])] = &[
        (
            "first stream keeps its numbering",
            &[
                switch(100, 5000, 0),
                fwd(100, 5000, 0, 100, 5000),
                fwd(101, 5000, 0, 101, 5000),
                fwd(102, 8000, 33, 102, 8000),
            ],
        ),
        ("forward without a switch starts a stream", &[fwd(7, 70, 0, 7, 70)]),
        (
            "input seq wraps at 65535",
            &[
                switch(65534, 0, 0),
                fwd(65534, 0, 0, 65534, 0),
                fwd(65535, 0, 0, 65535, 0),
                fwd(0, 3000, 33, 0, 3000),
                fwd(1, 3000, 33, 1, 3000),
            ],
        ),
        (
            "switch to a stream about to wrap",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                switch(65535, 777, 20),
                fwd(65535, 777, 20, 11, 1800),
                fwd(0, 3777, 53, 12, 4800),
            ],
        ),
        (
            "output ts wraps at 2^32 within a stream",
            &[
                switch(1, max - 1000, 0),
                fwd(1, max - 1000, 0, 1, max - 1000),
                fwd(2, max.wrapping_add(2000), 33, 2, 1999),
            ],
        ),
        (
            "output ts wraps at 2^32 across a switch",
            &[
                switch(1, max - 100, 0),
                fwd(1, max - 100, 0, 1, max - 100),
                switch(4000, 123, 10),
                fwd(4000, 123, 10, 2, 799),
            ],
        ),
        (
            "switch advances ts by at least one tick",
            &[switch(1, 0, 0), fwd(1, 0, 0, 1, 0), switch(900, 5, 0), fwd(900, 5, 0, 2, 1)],
        ),
        (
            "skipped packets leave no gap",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                skip(11),
                skip(12),
                fwd(13, 0, 0, 11, 0),
                skip(14),
                fwd(15, 0, 0, 12, 0),
            ],
        ),
        (
            "upstream loss leaves a gap, filled by the late packet",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), fwd(13, 0, 0, 13, 0), fwd(11, 0, 0, 11, 0)],
        ),
        (
            "reordered packet after a skip keeps its slot",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), skip(12), fwd(13, 0, 0, 12, 0), fwd(11, 0, 0, 11, 0)],
        ),
        (
            "skipped packet arriving again is a duplicate",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), skip(11), fwd(12, 0, 0, 11, 0), rejected(11, 0, Duplicate)],
        ),
        (
            "late skip keeps its gap",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), fwd(12, 0, 0, 12, 0), skip(11), fwd(13, 0, 0, 13, 0)],
        ),
        ("duplicate", &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), rejected(10, 0, Duplicate)]),
        (
            "packet from before the switch",
            &[switch(100, 0, 0), fwd(100, 0, 0, 100, 0), rejected(99, 0, OutOfOrderTooOld)],
        ),
        (
            "packet too far behind",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                fwd(10 + far, 0, 0, 10 + far, 0),
                rejected(11, 0, OutOfOrderTooOld),
            ],
        ),
        (
            "a jump the receiver could still place keeps its gap",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), fwd(10 + JUMP, 90, 1, 10 + JUMP, 90)],
        ),
        (
            "a jump past MAX_OUTPUT_JUMP continues right after the last output",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                fwd(11 + JUMP, 90, 10, 11, 900),
                fwd(12 + JUMP, 180, 10, 12, 990),
                rejected(10 + JUMP, 90, OutOfOrderTooOld),
            ],
        ),
        (
            // Skipped padding moves the input on without output: the next packet is judged by
            // where the output would go, not by one step of the input.
            "skipped padding far ahead, then a packet further still",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), skip(10 + JUMP), fwd(10 + 2 * JUMP, 90, 10, 11, 900)],
        ),
        (
            "switch after a skipped newest packet",
            &[switch(10, 0, 0), fwd(10, 0, 0, 10, 0), skip(11), switch(500, 0, 0), fwd(500, 0, 0, 11, 1)],
        ),
        (
            "switch after a late packet filled the top slot",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                skip(12),
                fwd(11, 0, 0, 11, 0),
                switch(500, 0, 0),
                fwd(500, 0, 0, 12, 1),
            ],
        ),
        (
            "old stream's numbers mean nothing after a switch",
            &[
                switch(10, 0, 0),
                fwd(10, 0, 0, 10, 0),
                fwd(11, 0, 0, 11, 0),
                switch(10, 9000, 10),
                fwd(10, 9000, 10, 12, 900),
                fwd(11, 9000, 10, 13, 900),
            ],
        ),
        ("skip before any stream is ignored", &[skip(5), fwd(5, 50, 0, 5, 50)]),
        (
            "skip of the switch packet itself",
            &[switch(10, 0, 0), skip(10), fwd(11, 0, 0, 10, 0), rejected(10, 0, Duplicate)],
        ),
    ];
    for (name, steps) in cases {
        run(name, steps);
    }
}

#[test]
fn switches_with_random_bases_stay_continuous() {
    let mut rng = Lcg::new(7);
    let start = Instant::now();
    let mut munger = RtpMunger::new(VIDEO_CLOCK);
    let mut now_ms = 0u64;
    let mut previous: Option<(u16, u32)> = None;
    for _stream in 0..50 {
        let (mut seq, mut ts) = (rng.next() as u16, rng.next());
        munger.switch_to(seq, ts, start + Duration::from_millis(now_ms));
        // Output gap expected before the next forwarded packet: 1 + packets lost upstream.
        let mut expected_gap = 1u16;
        for packet in 0..300 {
            let now = start + Duration::from_millis(now_ms);
            let first = packet == 0;
            if !first && rng.chance(10) {
                munger.skip(seq);
            } else if !first && rng.chance(5) {
                expected_gap += 1; // lost upstream: never reaches the munger
            } else {
                let (out_seq, out_ts) = munger.forward(seq, ts, now).expect("in-order packet");
                if let Some((prev_seq, prev_ts)) = previous {
                    assert_eq!(out_seq.wrapping_sub(prev_seq), expected_gap);
                    let ts_step = out_ts.wrapping_sub(prev_ts) as i32;
                    assert!(if first { ts_step > 0 } else { ts_step >= 0 }, "ts went back by {ts_step}");
                }
                previous = Some((out_seq, out_ts));
                expected_gap = 1;
            }
            seq = seq.wrapping_add(1);
            if rng.chance(20) {
                ts = ts.wrapping_add(3000);
                now_ms += 33;
            }
        }
        now_ms += u64::from(rng.next() % 100);
    }
}
