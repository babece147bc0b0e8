//! The delay-based congestion signal: arrival-time grouping → trendline → overuse detector.

mod inter_arrival;
mod overuse;
mod trendline;

use std::time::{Duration, Instant};

pub use overuse::BandwidthUsage;

use inter_arrival::InterArrival;
use overuse::OveruseDetector;
use trendline::Trendline;

/// Turns received packets into a [`BandwidthUsage`] verdict.
#[derive(Debug, Default)]
pub(crate) struct DelaySignal {
    inter_arrival: InterArrival,
    trendline: Trendline,
    detector: OveruseDetector,
    last_trend: f64,
}

impl DelaySignal {
    /// Add one received packet; feed packets in arrival order.
    pub fn add(&mut self, sent_at: Instant, arrival: Duration) {
        let Some(d) = self.inter_arrival.add(sent_at, arrival) else {
            return;
        };
        let Some(t) = self.trendline.update(d.send_delta_ms, d.arrival_delta_ms, d.arrival_ms) else {
            return;
        };
        self.last_trend = t.modified;
        self.detector.detect(t.modified, t.num_deltas, d.send_delta_ms, d.arrival_ms);
    }

    /// The current verdict.
    pub fn usage(&self) -> BandwidthUsage {
        self.detector.usage()
    }

    /// Last modified trend and current threshold (for stats).
    pub fn trend_and_threshold(&self) -> (f64, f64) {
        (self.last_trend, self.detector.threshold())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets every 10 ms; after the 100th each arrives `extra_us` later than the send spacing
    /// predicts (a growing queue for positive values, a draining one for negative).
    fn verdict(extra_us: i64, n: usize) -> BandwidthUsage {
        let t0 = Instant::now();
        let mut s = DelaySignal::default();
        let mut arrival: i64 = 50_000;
        for i in 0..n {
            arrival += 10_000 + if i > 100 { extra_us } else { 0 };
            s.add(t0 + Duration::from_micros(i as u64 * 10_000), Duration::from_micros(arrival as u64));
        }
        s.usage()
    }

    #[test]
    fn end_to_end_table() {
        let cases = [(0, BandwidthUsage::Normal), (1_500, BandwidthUsage::Overuse), (-1_500, BandwidthUsage::Underuse)];
        for (extra, want) in cases {
            assert_eq!(verdict(extra, 140), want, "extra {extra} us");
        }
    }
}
