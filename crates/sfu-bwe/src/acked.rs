//! Acknowledged bitrate: the rate at which the receiver actually got our packets.
//!
//! Measured over a sliding window of *receiver* arrival times, so it is the bottleneck's delivery
//! rate whenever a queue exists — the best available measurement of capacity at the moment of a
//! congestion decrease, which is what the AIMD controller multiplies by 0.85.

use std::collections::VecDeque;
use std::time::Duration;

use crate::Bitrate;

/// Normal measurement window (receiver time). Short, so a capacity drop shows within one or two
/// feedback reports; long enough to span several packets at video rates.
pub(crate) const WINDOW: Duration = Duration::from_millis(250);
/// At low rates the window is stretched to hold at least this many packets...
pub(crate) const MIN_PACKETS: usize = 10;
/// ...but never beyond this.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct AckedBitrate {
    /// (arrival, size) in arrival order, covering at most [`MAX_WINDOW`].
    packets: VecDeque<(Duration, usize)>,
}

impl AckedBitrate {
    /// Add one received packet.
    pub fn add(&mut self, arrival: Duration, size: usize) {
        // Keep arrival order; reports are nearly sorted so the scan is short.
        let pos = self.packets.iter().rposition(|(a, _)| *a <= arrival).map_or(0, |p| p + 1);
        self.packets.insert(pos, (arrival, size));
        let newest = self.packets.back().map_or(arrival, |p| p.0);
        while self.packets.front().is_some_and(|p| newest.saturating_sub(p.0) > MAX_WINDOW) {
            self.packets.pop_front();
        }
    }

    /// The current delivery rate, if enough packets have been seen.
    pub fn rate(&self) -> Option<Bitrate> {
        let newest = self.packets.back()?.0;
        let mut first = self.packets.len();
        for (i, (a, _)) in self.packets.iter().enumerate().rev() {
            let in_window = newest.saturating_sub(*a) <= WINDOW;
            if !in_window && self.packets.len() - i > MIN_PACKETS {
                break;
            }
            first = i;
        }
        let used = self.packets.range(first..);
        if used.len() < 2 {
            return None;
        }
        let oldest = self.packets[first];
        // The first packet's bytes arrived before the span starts.
        let bytes: usize = used.map(|p| p.1).sum::<usize>() - oldest.1;
        Bitrate::from_bytes(bytes as u64, newest - oldest.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(spacing_us: u64, size: usize, n: u64) -> Option<Bitrate> {
        let mut a = AckedBitrate::default();
        for i in 0..n {
            a.add(Duration::from_micros(1_000_000 + i * spacing_us), size);
        }
        a.rate()
    }

    #[test]
    fn rate_table() {
        // (spacing us, size, count, expected kbit/s)
        let cases: &[(u64, usize, u64, Option<u64>)] = &[
            (10_000, 1250, 1, None),
            (10_000, 1250, 2, Some(1000)),
            (10_000, 1250, 100, Some(1000)),
            (4_000, 1000, 500, Some(2000)),
            // 10 packets/s: the window stretches to 10 packets.
            (100_000, 1250, 50, Some(100)),
        ];
        for (spacing, size, n, want) in cases {
            let got = feed(*spacing, *size, *n).map(|b| (b.as_f64() / 1000.0).round() as u64);
            assert_eq!(got, *want, "spacing {spacing} size {size} n {n}");
        }
    }

    #[test]
    fn follows_a_drop_within_one_window() {
        let mut a = AckedBitrate::default();
        let mut t = Duration::from_secs(1);
        for _ in 0..200 {
            t += Duration::from_millis(4); // 2.5 Mbit/s of 1250-byte packets
            a.add(t, 1250);
        }
        for _ in 0..20 {
            t += Duration::from_millis(16); // 0.625 Mbit/s
            a.add(t, 1250);
        }
        let r = a.rate().unwrap().as_f64();
        assert!((r - 625_000.0).abs() < 10_000.0, "{r}");
    }

    #[test]
    fn out_of_order_insert() {
        let mut a = AckedBitrate::default();
        for ms in [0u64, 20, 10, 30] {
            a.add(Duration::from_millis(ms), 1250);
        }
        assert_eq!(a.rate(), Some(Bitrate::mbps(1)));
    }
}
