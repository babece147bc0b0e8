//! Counters and a log-linear histogram shared between the media workers and the reporter.

use std::time::Duration;

/// Values below this are stored exactly; above it, 64 buckets per power of two (~1.6 % error).
const LINEAR: u64 = 128;
const SUB_BUCKETS: u64 = 64;
const BUCKETS: usize = 128 + 57 * 64;

/// A histogram of non-negative integers (microseconds here), mergeable and cheap to record.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exponent = 63 - u64::from(v.leading_zeros()); // >= 7
    let mantissa = v >> (exponent - 6); // 64..=127
    (LINEAR + (exponent - 7) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

/// The midpoint of bucket `i`.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exponent = (i - LINEAR) / SUB_BUCKETS + 7;
    let mantissa = (i - LINEAR) % SUB_BUCKETS + SUB_BUCKETS;
    let low = mantissa << (exponent - 6);
    let width = 1u64 << (exponent - 6);
    low + width / 2
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        let i = index(v).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
    }

    /// The `q`-quantile (0..=1), or None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value_of(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// What one media worker has seen, cumulative since start unless noted.
#[derive(Clone, Default)]
pub struct WorkerStats {
    pub publishers: u64,
    pub publishers_connected: u64,
    pub subscribers: u64,
    pub subscribers_connected: u64,
    pub subscribers_failed: u64,
    /// Connected -> disconnected/failed transitions of any connection.
    pub disconnects: u64,
    pub subscribers_with_media: u64,
    /// Subscribers that received a media packet in the last second.
    pub subscribers_receiving: u64,
    pub subscribers_with_keyframe: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_audio: u64,
    pub rx_video: u64,
    /// Packets expected from sequence numbers and packets missing (never received), summed over
    /// every received stream; duplicates (retransmissions of packets already held) are not counted.
    pub rx_expected: u64,
    pub rx_missing: u64,
    pub rx_duplicates: u64,
    /// The same, video streams only.
    pub rx_video_expected: u64,
    pub rx_video_missing: u64,
    /// Received video packets per simulcast layer (from the harness trailer), low first.
    pub rx_layers: [u64; 3],
    pub keyframes_rx: u64,
    /// Media packets opened on the subscribers' own path (fast_rx) rather than by the stack.
    pub rx_fast: u64,
    /// Subscribers whose own path was switched off (it could not open the server's media).
    pub fast_rx_off: u64,
    /// Packets received on RTX streams (retransmissions and bandwidth probes).
    pub rx_rtx: u64,
    pub plis_sent: u64,
    pub plis_received: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub send_errors: u64,
    pub impair_dropped_loss: u64,
    pub impair_dropped_queue: u64,
    /// Latency of packets received since the last take (microseconds).
    pub latency: Histogram,
    /// Join times (ms) completed since the last take.
    pub joins_ms: Vec<f64>,
    /// Busy time of the worker loop since the last take, and the wall time it covers.
    pub busy: Duration,
    pub wall: Duration,
    /// How late the worker ran its timers (publisher frames, peer-connection timeouts), max since
    /// the last take.
    pub timer_late_max: Duration,
    /// Publisher frames skipped because the worker fell behind by more than 100 ms.
    pub frames_skipped: u64,
    /// When the worker wrote this snapshot (rates are computed per worker against it).
    pub at: Option<std::time::Instant>,
}

impl WorkerStats {
    /// Sums `other` into `self` (the per-interval fields are merged as well).
    pub fn add(&mut self, other: &WorkerStats) {
        self.publishers += other.publishers;
        self.publishers_connected += other.publishers_connected;
        self.subscribers += other.subscribers;
        self.subscribers_connected += other.subscribers_connected;
        self.subscribers_failed += other.subscribers_failed;
        self.disconnects += other.disconnects;
        self.subscribers_with_media += other.subscribers_with_media;
        self.subscribers_receiving += other.subscribers_receiving;
        self.subscribers_with_keyframe += other.subscribers_with_keyframe;
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.rx_audio += other.rx_audio;
        self.rx_video += other.rx_video;
        self.rx_expected += other.rx_expected;
        self.rx_missing += other.rx_missing;
        self.rx_duplicates += other.rx_duplicates;
        self.rx_video_expected += other.rx_video_expected;
        self.rx_video_missing += other.rx_video_missing;
        for (a, b) in self.rx_layers.iter_mut().zip(other.rx_layers) {
            *a += b;
        }
        self.keyframes_rx += other.keyframes_rx;
        self.rx_fast += other.rx_fast;
        self.fast_rx_off += other.fast_rx_off;
        self.rx_rtx += other.rx_rtx;
        self.plis_sent += other.plis_sent;
        self.plis_received += other.plis_received;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.send_errors += other.send_errors;
        self.impair_dropped_loss += other.impair_dropped_loss;
        self.impair_dropped_queue += other.impair_dropped_queue;
        self.latency.merge(&other.latency);
        self.joins_ms.extend_from_slice(&other.joins_ms);
        self.busy += other.busy;
        self.wall += other.wall;
        self.timer_late_max = self.timer_late_max.max(other.timer_late_max);
        self.frames_skipped += other.frames_skipped;
        self.at = match (self.at, other.at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Percentile of a list of samples (sorted in place), nearest rank.
pub fn percentile(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.02, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.02, "{p99}");
        assert_eq!(h.quantile(1.0), Some(10_000));
        for v in [0u64, 1, 127, 128, 129, 1 << 20, u64::MAX / 4] {
            assert!(index(v) < BUCKETS);
        }
    }

    #[test]
    fn percentile_nearest_rank() {
        let mut s = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut s, 0.5), Some(3.0));
        assert_eq!(percentile(&mut s, 0.99), Some(5.0));
    }
}
