//! Overuse detector with an adaptive threshold.
//!
//! Compares the trendline's modified trend against a threshold `γ`. Above `+γ` for long enough is
//! *overuse* (the queue is growing), below `-γ` is *underuse* (it is draining), otherwise
//! *normal*. `γ` itself follows `|trend|` — quickly down, slowly up — so a path with naturally
//! jittery delay does not read as congested, while a fixed threshold would either starve against
//! loss-based TCP flows (too low) or never fire (too high).

/// The detector's verdict about the bottleneck queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Delay is stable: the link keeps up.
    #[default]
    Normal,
    /// Delay is growing: we send faster than the bottleneck drains.
    Overuse,
    /// Delay is shrinking: a queue is draining.
    Underuse,
}

/// Initial threshold (same unit as the modified trend).
pub(crate) const INITIAL_THRESHOLD: f64 = 12.5;
/// Bounds of the adaptive threshold.
pub(crate) const MIN_THRESHOLD: f64 = 6.0;
pub(crate) const MAX_THRESHOLD: f64 = 600.0;
/// Adaptation gain when `|trend|` is above the threshold (slow: do not learn to ignore congestion).
pub(crate) const K_UP: f64 = 0.0087;
/// Adaptation gain when `|trend|` is below the threshold (fast: become sensitive again).
pub(crate) const K_DOWN: f64 = 0.039;
/// Trends this far above the threshold are spikes (a capacity drop): do not adapt to them.
pub(crate) const MAX_ADAPT_OFFSET: f64 = 15.0;
/// Overuse must persist this long (in send time) before it is declared.
pub(crate) const OVERUSE_TIME_MS: f64 = 10.0;
/// Longest time step used in one threshold update (ms), so a pause cannot swing it.
const MAX_ADAPT_STEP_MS: f64 = 100.0;

#[derive(Debug)]
pub(crate) struct OveruseDetector {
    threshold: f64,
    last_update_ms: Option<f64>,
    overuse_ms: f64,
    overuse_count: u32,
    prev_trend: f64,
    usage: BandwidthUsage,
}

impl Default for OveruseDetector {
    fn default() -> Self {
        OveruseDetector {
            threshold: INITIAL_THRESHOLD,
            last_update_ms: None,
            overuse_ms: -1.0,
            overuse_count: 0,
            prev_trend: 0.0,
            usage: BandwidthUsage::Normal,
        }
    }
}

impl OveruseDetector {
    /// The current verdict.
    pub fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// The current threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Judge one modified trend. `send_delta_ms` is the send spacing of the group that produced
    /// it; `now_ms` is that group's arrival time (the threshold adapts in the receiver's time).
    pub fn detect(&mut self, trend: f64, num_deltas: usize, send_delta_ms: f64, now_ms: f64) -> BandwidthUsage {
        if num_deltas < 2 {
            return self.usage;
        }
        if trend > self.threshold {
            if self.overuse_ms < 0.0 {
                // Assume we have been overusing for half the time since the last sample.
                self.overuse_ms = send_delta_ms / 2.0;
            } else {
                self.overuse_ms += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.overuse_ms > OVERUSE_TIME_MS && self.overuse_count > 1 && trend >= self.prev_trend {
                self.overuse_ms = 0.0;
                self.overuse_count = 0;
                self.usage = BandwidthUsage::Overuse;
            }
        } else if trend < -self.threshold {
            self.overuse_ms = -1.0;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Underuse;
        } else {
            self.overuse_ms = -1.0;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Normal;
        }
        self.prev_trend = trend;
        self.adapt(trend, now_ms);
        self.usage
    }

    fn adapt(&mut self, trend: f64, now_ms: f64) {
        let last = *self.last_update_ms.get_or_insert(now_ms);
        self.last_update_ms = Some(now_ms);
        let abs = trend.abs();
        if abs > self.threshold + MAX_ADAPT_OFFSET {
            return;
        }
        let k = if abs < self.threshold { K_DOWN } else { K_UP };
        let dt = (now_ms - last).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold = (self.threshold + k * (abs - self.threshold) * dt).clamp(MIN_THRESHOLD, MAX_THRESHOLD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a sequence of trends 5 ms apart; return the verdict after each.
    fn run(trends: &[f64]) -> Vec<BandwidthUsage> {
        let mut d = OveruseDetector::default();
        trends.iter().enumerate().map(|(i, t)| d.detect(*t, 100, 5.0, i as f64 * 5.0)).collect()
    }

    #[test]
    fn verdict_table() {
        use BandwidthUsage::*;
        let cases: &[(&str, &[f64], BandwidthUsage)] = &[
            ("flat is normal", &[0.0, 1.0, -1.0, 0.5], Normal),
            ("one spike is not overuse", &[0.0, 40.0], Normal),
            ("sustained rising trend is overuse", &[20.0, 25.0, 30.0, 35.0], Overuse),
            ("falling trend above threshold holds off", &[40.0, 30.0, 20.0], Normal),
            ("negative trend is underuse", &[-30.0], Underuse),
            ("back to normal", &[20.0, 25.0, 30.0, 35.0, 0.0], Normal),
        ];
        for (name, trends, want) in cases {
            assert_eq!(*run(trends).last().unwrap(), *want, "{name}");
        }
    }

    #[test]
    fn threshold_adapts_within_bounds() {
        let mut d = OveruseDetector::default();
        // Moderate jitter just above the threshold raises it slowly.
        for i in 0..2000 {
            d.detect(if i % 2 == 0 { 20.0 } else { -20.0 }, 100, 5.0, i as f64 * 5.0);
        }
        assert!(d.threshold() > 15.0 && d.threshold() <= 20.0, "{}", d.threshold());
        // Quiet traffic brings it down to the floor.
        for i in 2000..4000 {
            d.detect(0.0, 100, 5.0, i as f64 * 5.0);
        }
        assert_eq!(d.threshold(), MIN_THRESHOLD);
    }
}
