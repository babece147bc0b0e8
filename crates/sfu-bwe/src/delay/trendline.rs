//! Trendline filter: the slope of accumulated one-way delay over arrival time.
//!
//! Each group delta adds `arrival_delta - send_delta` to an accumulated delay (the queuing delay
//! up to an unknown constant). That sum is exponentially smoothed, and a least-squares line is
//! fitted through the last [`WINDOW`] (arrival time, smoothed delay) points. A positive slope means
//! the bottleneck queue is growing; its size says how fast (ms of extra delay per ms).

use std::collections::VecDeque;

/// Points in the regression window. 20 groups is ~100-400 ms of traffic: long enough to average
/// out jitter, short enough to react within a few feedback reports.
pub(crate) const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay (weight of the old value).
pub(crate) const SMOOTHING: f64 = 0.9;
/// Gain applied to the slope before it is compared with the detector threshold (ms).
pub(crate) const GAIN: f64 = 4.0;
/// The slope is also scaled by the number of deltas seen, up to this many, so the first few noisy
/// samples after a start cannot trigger overuse on their own.
pub(crate) const MAX_DELTA_COUNT_SCALE: usize = 60;

/// The output of one trendline update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Trend {
    /// Scaled slope, in the same unit as the detector threshold.
    pub modified: f64,
    /// Number of deltas seen so far (capped).
    pub num_deltas: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Trendline {
    first_arrival_ms: Option<f64>,
    accumulated: f64,
    smoothed: f64,
    num_deltas: usize,
    points: VecDeque<(f64, f64)>,
    last_slope: f64,
}

impl Trendline {
    /// Fold in one inter-group delay variation. Returns a trend once the window is full.
    pub fn update(&mut self, send_delta_ms: f64, arrival_delta_ms: f64, arrival_ms: f64) -> Option<Trend> {
        let first = *self.first_arrival_ms.get_or_insert(arrival_ms);
        self.num_deltas = (self.num_deltas + 1).min(1000);
        self.accumulated += arrival_delta_ms - send_delta_ms;
        self.smoothed = SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * self.accumulated;
        self.points.push_back((arrival_ms - first, self.smoothed));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        if self.points.len() < WINDOW {
            return None;
        }
        if let Some(s) = slope(&self.points) {
            self.last_slope = s;
        }
        Some(Trend {
            modified: self.num_deltas.min(MAX_DELTA_COUNT_SCALE) as f64 * self.last_slope * GAIN,
            num_deltas: self.num_deltas,
        })
    }
}

/// Least-squares slope of y over x; `None` when all x are equal.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) =
        points.iter().fold((0.0, 0.0), |(num, den), (x, y)| (num + (x - mx) * (y - my), den + (x - mx) * (x - mx)));
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `n` groups 10 ms apart whose arrival spacing is `10 + extra` ms.
    fn feed(extra_ms: f64, n: usize) -> Option<Trend> {
        let mut t = Trendline::default();
        let mut arrival = 0.0;
        let mut last = None;
        for _ in 0..n {
            arrival += 10.0 + extra_ms;
            last = t.update(10.0, 10.0 + extra_ms, arrival);
        }
        last
    }

    #[test]
    fn trend_table() {
        // (extra delay per group ms, groups, expected sign of modified trend: 1, 0, -1 or None)
        let cases: &[(f64, usize, Option<i32>)] =
            &[(0.0, 5, None), (0.0, 30, Some(0)), (1.0, 30, Some(1)), (-1.0, 30, Some(-1))];
        for (extra, n, want) in cases {
            let got = feed(*extra, *n).map(|t| {
                if t.modified > 1e-9 {
                    1
                } else if t.modified < -1e-9 {
                    -1
                } else {
                    0
                }
            });
            assert_eq!(got, *want, "extra {extra} n {n}");
        }
    }

    #[test]
    fn steady_growth_slope_converges() {
        // 1 ms extra per 11 ms of arrival: slope ~ 1/11, modified ~ 30 * 4 / 11 after 30 deltas.
        let t = feed(1.0, 200).unwrap();
        let want = MAX_DELTA_COUNT_SCALE as f64 * GAIN / 11.0;
        assert!((t.modified - want).abs() < 0.05 * want, "{} vs {want}", t.modified);
    }
}
