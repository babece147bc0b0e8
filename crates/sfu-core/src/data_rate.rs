//! A participant's data-message budget: two token buckets, one counting messages and one
//! counting bytes, each refilled continuously at its rate per second and holding at most one
//! second's worth. A message is allowed only when both buckets can pay for it; a refused message
//! takes nothing, so a flood is cut to the rates while a sender within them never notices.

use std::time::Instant;

/// Token buckets on messages and bytes per second. Time comes from the caller.
#[derive(Clone, Debug)]
pub struct DataRateLimiter {
    messages_per_second: f64,
    bytes_per_second: f64,
    messages: f64,
    bytes: f64,
    last: Option<Instant>,
}

impl DataRateLimiter {
    /// A limiter that starts full: a second's worth of messages and bytes may go at once.
    pub fn new(messages_per_second: u32, bytes_per_second: u32) -> Self {
        DataRateLimiter {
            messages_per_second: f64::from(messages_per_second),
            bytes_per_second: f64::from(bytes_per_second),
            messages: f64::from(messages_per_second),
            bytes: f64::from(bytes_per_second),
            last: None,
        }
    }

    /// Whether a message of `len` bytes may go at `now`; if so, it is paid for. A message larger
    /// than a second's worth of bytes is never allowed.
    pub fn allow(&mut self, len: usize, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.messages = (self.messages + elapsed * self.messages_per_second).min(self.messages_per_second);
            self.bytes = (self.bytes + elapsed * self.bytes_per_second).min(self.bytes_per_second);
        }
        // Time only moves forward here, even if a caller's clock readings arrive out of order.
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        let len = len as f64;
        if self.messages >= 1.0 && self.bytes >= len {
            self.messages -= 1.0;
            self.bytes -= len;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DataRateLimiter;
    use std::time::{Duration, Instant};

    /// (milliseconds since start, message length, allowed?), in order.
    type Step = (u64, usize, bool);

    /// Runs `steps` against a limiter of 10 msg/s and 1000 B/s.
    fn run(steps: &[Step]) {
        let start = Instant::now();
        let mut limiter = DataRateLimiter::new(10, 1000);
        for (i, &(ms, len, want)) in steps.iter().enumerate() {
            let got = limiter.allow(len, start + Duration::from_millis(ms));
            assert_eq!(got, want, "step {i}: {len} bytes at {ms} ms");
        }
    }

    #[test]
    fn table() {
        let burst_of_ten: Vec<_> = (0..10).map(|_| (0, 1, true)).collect();
        let cases: Vec<(&str, Vec<Step>)> = vec![
            ("a second's worth of messages goes at once", burst_of_ten.clone()),
            ("the eleventh at once is refused", [burst_of_ten.clone(), vec![(0, 1, false)]].concat()),
            (
                "one message refills in a tenth of a second",
                [burst_of_ten.clone(), vec![(99, 1, false), (101, 1, true)]].concat(),
            ),
            ("bytes bound too", vec![(0, 600, true), (0, 600, false), (0, 400, true), (0, 1, false)]),
            ("bytes refill at their rate", vec![(0, 1000, true), (500, 600, false), (700, 600, true)]),
            (
                "larger than a second's worth: never",
                vec![(0, 1001, false), (10_000, 1001, false), (10_000, 1000, true)],
            ),
            ("refill stops at a second's worth", {
                let mut s = vec![(0, 1, true)];
                s.extend((0..10).map(|_| (60_000, 1, true)));
                s.push((60_000, 1, false));
                s
            }),
            ("a refusal takes nothing", vec![(0, 900, true), (0, 200, false), (0, 100, true)]),
            (
                "a clock going back refills nothing",
                [burst_of_ten, vec![(101, 1, true), (50, 1, false), (150, 1, false), (202, 1, true)]].concat(),
            ),
        ];
        for (name, steps) in cases {
            eprintln!("case: {name}");
            run(&steps);
        }
    }

    #[test]
    fn a_steady_sender_within_the_rates_is_never_refused() {
        let start = Instant::now();
        let mut limiter = DataRateLimiter::new(10, 1000);
        for i in 0..1000u64 {
            assert!(limiter.allow(100, start + Duration::from_millis(100 * i)), "message {i}");
        }
    }
}
