//! Loss-based control: a cap on the estimate when packets vanish.
//!
//! The delay signal misses congestion at a shallow buffer (it overflows before delay grows) and
//! while competing with loss-driven TCP. So loss is measured over batches of at least
//! [`MIN_PACKETS`] reported packets:
//!
//! * above [`HIGH_LOSS`]: cap at `estimate × (1 − loss / 2)`, at most once per RTT + 300 ms so the
//!   previous cut has shown its effect;
//! * below [`LOW_LOSS`]: an existing cap grows 8 %/s and is lifted once it passes the delay-based
//!   estimate;
//! * in between: hold. A few percent of loss is normal on wireless paths, and reacting to it would
//!   give up capacity for nothing.

use std::time::{Duration, Instant};

use crate::Bitrate;

/// Loss fraction under which the cap may grow.
pub(crate) const LOW_LOSS: f64 = 0.02;
/// Loss fraction over which the cap is cut.
pub(crate) const HIGH_LOSS: f64 = 0.10;
/// Packets per loss measurement: fewer make the fraction too coarse to compare with 2 %.
pub(crate) const MIN_PACKETS: u32 = 20;
/// Added to the RTT between two cuts.
pub(crate) const DECREASE_INTERVAL_EXTRA: Duration = Duration::from_millis(300);
/// Growth of a cap per second while loss is low.
pub(crate) const INCREASE_PER_SEC: f64 = 1.08;

#[derive(Debug, Default)]
pub(crate) struct LossBased {
    cap: Option<Bitrate>,
    lost: u32,
    total: u32,
    last_fraction: f64,
    last_decrease: Option<Instant>,
    last_increase: Option<Instant>,
}

impl LossBased {
    /// The current cap, if loss is limiting the estimate.
    pub fn cap(&self) -> Option<Bitrate> {
        self.cap
    }

    /// The last measured loss fraction.
    pub fn fraction(&self) -> f64 {
        self.last_fraction
    }

    /// Forget the last measurement and the partial batch (they are stale); the cap stays.
    pub fn forget_fraction(&mut self) {
        self.last_fraction = 0.0;
        self.lost = 0;
        self.total = 0;
    }

    /// Drop the cap (e.g. when a probe proves a higher rate).
    pub fn lift_to(&mut self, b: Bitrate) {
        if self.cap.is_some_and(|c| c < b) {
            self.cap = Some(b);
        }
    }

    /// Count reported packets; once a batch is complete, adjust the cap. `estimate` is the
    /// combined estimate the sender currently uses, `delay_based` the delay-based one.
    pub fn on_reports(
        &mut self,
        lost: u32,
        received: u32,
        estimate: Bitrate,
        delay_based: Bitrate,
        rtt: Duration,
        now: Instant,
    ) {
        self.lost += lost;
        self.total += lost + received;
        if self.total < MIN_PACKETS {
            return;
        }
        let loss = self.lost as f64 / self.total as f64;
        self.last_fraction = loss;
        self.lost = 0;
        self.total = 0;

        if loss > HIGH_LOSS {
            let allowed =
                self.last_decrease.is_none_or(|t| now.saturating_duration_since(t) >= rtt + DECREASE_INTERVAL_EXTRA);
            if allowed {
                let base = self.cap.map_or(estimate, |c| c.min(estimate));
                self.cap = Some(base * (1.0 - 0.5 * loss));
                self.last_decrease = Some(now);
            }
            self.last_increase = Some(now);
        } else if loss < LOW_LOSS {
            if let Some(cap) = self.cap {
                let dt = self.last_increase.map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
                let grown = cap * INCREASE_PER_SEC.powf(dt.min(1.0)) + Bitrate::from_f64(1000.0 * dt.min(1.0));
                self.cap = (grown < delay_based).then_some(grown);
            }
            self.last_increase = Some(now);
        } else {
            self.last_increase = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn cap_table() {
        // (lost, received) batches 100 ms apart -> expected cap in kbit/s after the last one,
        // with a 1000 kbit/s estimate and 1200 kbit/s delay-based estimate.
        type Case<'a> = (&'a str, &'a [(u32, u32)], Option<u64>);
        let cases: &[Case<'_>] = &[
            ("no loss, no cap", &[(0, 50), (0, 50)], None),
            ("small batch not judged", &[(5, 5)], None),
            ("moderate loss holds", &[(1, 19), (1, 19)], None),
            ("heavy loss cuts", &[(10, 30)], Some(875)),
            ("second cut waits rtt+300ms", &[(10, 30), (10, 30)], Some(875)),
            ("cut then grow 8 %/s", &[(10, 30), (0, 50), (0, 50), (0, 50)], Some(895)),
        ];
        for (name, batches, want) in cases {
            let t0 = Instant::now();
            let mut l = LossBased::default();
            for (i, (lost, recv)) in batches.iter().enumerate() {
                l.on_reports(*lost, *recv, Bitrate::mbps(1), Bitrate::kbps(1200), RTT, t0 + ms(100 * i as u64));
            }
            assert_eq!(l.cap().map(|c| c.as_u64() / 1000), *want, "{name}");
        }
    }

    #[test]
    fn cap_lifted_above_delay_based() {
        let t0 = Instant::now();
        let mut l = LossBased::default();
        l.on_reports(10, 30, Bitrate::mbps(1), Bitrate::kbps(900), RTT, t0);
        assert!(l.cap().is_some());
        for i in 1..=10 {
            l.on_reports(0, 50, Bitrate::mbps(1), Bitrate::kbps(900), RTT, t0 + Duration::from_secs(i));
        }
        assert_eq!(l.cap(), None);
    }
}
