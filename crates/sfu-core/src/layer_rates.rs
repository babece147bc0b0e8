//! How many bits per second each simulcast layer of one published track carries, measured from
//! the packets passing by. The allocator prices layers with these numbers.
//!
//! One [`LayerRates`] lives with each published track (all its subscribers share it). The window
//! is a ring of fixed time buckets: recording a packet adds to one counter, so the per-packet
//! cost is constant and nothing is allocated after construction.

use std::time::{Duration, Instant};

use crate::selector::MAX_LAYERS;

/// Width of one bucket of the sliding window.
pub const LAYER_RATE_BUCKET: Duration = Duration::from_millis(100);

/// Number of buckets: the window spans `LAYER_RATE_BUCKETS` × [`LAYER_RATE_BUCKET`] = 2 s. Long
/// enough that a keyframe (often 5-10× a delta frame, every 2-3 s) moves the rate by a fraction,
/// short enough that a publisher lowering its rate shows within a couple of seconds.
pub const LAYER_RATE_BUCKETS: usize = 20;

/// A layer reports no rate until its packets have flowed this long: a rate from a few frames
/// (or from one keyframe alone) would be far off.
pub const LAYER_RATE_MIN_SPAN: Duration = Duration::from_millis(500);

/// One time slot of the window.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Absolute bucket number (time since `origin` / bucket width) this slot holds; a slot whose
    /// number is outside the window is stale and counts as empty.
    index: u64,
    /// Bytes per layer in this slot.
    bytes: [u64; MAX_LAYERS],
}

/// Per-layer bitrate of one published track over a sliding window.
#[derive(Clone, Debug)]
pub struct LayerRates {
    /// Time of the first packet; bucket numbers count from here.
    origin: Option<Instant>,
    buckets: [Bucket; LAYER_RATE_BUCKETS],
    /// Per layer: when its current unbroken run of packets began (reset after a silence longer
    /// than the window, so a layer that restarts is measured afresh).
    since: [Option<Instant>; MAX_LAYERS],
    /// Per layer: its latest packet.
    last: [Option<Instant>; MAX_LAYERS],
}

impl Default for LayerRates {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerRates {
    /// Rates with nothing measured yet.
    pub fn new() -> Self {
        Self {
            origin: None,
            buckets: [Bucket::default(); LAYER_RATE_BUCKETS],
            since: [None; MAX_LAYERS],
            last: [None; MAX_LAYERS],
        }
    }

    /// Records a packet of `layer` carrying `bytes` (count what the subscriber is sent: RTP
    /// header plus payload). Layers beyond [`MAX_LAYERS`] and packets older than the window are
    /// ignored.
    pub fn on_packet(&mut self, layer: u8, bytes: usize, now: Instant) {
        let layer = usize::from(layer);
        if layer >= MAX_LAYERS {
            return;
        }
        let index = self.bucket_index(now);
        let slot = &mut self.buckets[(index % LAYER_RATE_BUCKETS as u64) as usize];
        if slot.index != index {
            if slot.index > index {
                return; // Older than the window: its slot already holds newer data.
            }
            *slot = Bucket { index, bytes: [0; MAX_LAYERS] };
        }
        slot.bytes[layer] = slot.bytes[layer].saturating_add(bytes as u64);
        let window = LAYER_RATE_BUCKET * LAYER_RATE_BUCKETS as u32;
        let silent = self.last[layer].is_none_or(|last| now.saturating_duration_since(last) > window);
        if silent {
            self.since[layer] = Some(now);
        }
        if self.last[layer].is_none_or(|last| now > last) {
            self.last[layer] = Some(now);
        }
    }

    /// Bits per second of `layer` over the window ending at `now`. `None` while the layer has
    /// flowed for less than [`LAYER_RATE_MIN_SPAN`], or when nothing of it is in the window.
    pub fn bitrate(&self, layer: u8, now: Instant) -> Option<u64> {
        let layer = usize::from(layer);
        let (origin, since) = (self.origin?, (*self.since.get(layer)?)?);
        if now.saturating_duration_since(since) < LAYER_RATE_MIN_SPAN {
            return None;
        }
        let current = bucket_number(origin, now);
        let first = (current + 1).saturating_sub(LAYER_RATE_BUCKETS as u64);
        let bytes: u64 = self
            .buckets
            .iter()
            .filter(|bucket| (first..=current).contains(&bucket.index))
            .map(|bucket| bucket.bytes[layer])
            .sum();
        if bytes == 0 {
            return None;
        }
        let window_start = origin + LAYER_RATE_BUCKET * u32::try_from(first).ok()?;
        let span = now.saturating_duration_since(window_start.max(since));
        let nanos = span.as_nanos().max(1);
        let bps = u128::from(bytes) * 8 * 1_000_000_000 / nanos;
        Some(u64::try_from(bps).unwrap_or(u64::MAX))
    }

    /// [`bitrate`](Self::bitrate) of every layer seen so far, lowest first (the list ends at the
    /// highest layer that ever had a packet; empty before any).
    pub fn bitrates(&self, now: Instant) -> Vec<Option<u64>> {
        let seen = self.last.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        (0..seen as u8).map(|layer| self.bitrate(layer, now)).collect()
    }

    /// Absolute bucket number of `now`, fixing the origin at the first call.
    fn bucket_index(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        bucket_number(origin, now)
    }
}

fn bucket_number(origin: Instant, now: Instant) -> u64 {
    let elapsed = now.saturating_duration_since(origin).as_nanos();
    (elapsed / LAYER_RATE_BUCKET.as_nanos()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of `bytes`-sized packets on `layer`, one every `every_ms`, from `from_ms` to
    /// `to_ms` (exclusive).
    #[derive(Clone, Copy, Debug)]
    struct Stream {
        layer: u8,
        bytes: usize,
        every_ms: u64,
        from_ms: u64,
        to_ms: u64,
    }

    const fn stream(layer: u8, bytes: usize, every_ms: u64, from_ms: u64, to_ms: u64) -> Stream {
        Stream { layer, bytes, every_ms, from_ms, to_ms }
    }

    /// (name, streams, query time in ms, expected rate per layer as (layer, bits/s or None))
    type Case = (&'static str, &'static [Stream], u64, &'static [(u8, Option<u64>)]);

    fn feed(rates: &mut LayerRates, start: Instant, streams: &[Stream]) {
        let mut packets: Vec<(u64, u8, usize)> = streams
            .iter()
            .flat_map(|s| (s.from_ms..s.to_ms).step_by(s.every_ms as usize).map(move |t| (t, s.layer, s.bytes)))
            .collect();
        packets.sort_by_key(|&(t, ..)| t);
        for (t, layer, bytes) in packets {
            rates.on_packet(layer, bytes, start + Duration::from_millis(t));
        }
    }

    /// Within 3 % of `expected` (bucket edges blur the window a little).
    fn close(got: Option<u64>, expected: Option<u64>) -> bool {
        match (got, expected) {
            (Some(got), Some(expected)) => got.abs_diff(expected) * 100 <= expected * 3,
            (got, expected) => got == expected,
        }
    }

    #[test]
    fn measures_each_layer() {
        // 1000 bytes every 10 ms = 800 kbit/s; 125 bytes every 10 ms = 100 kbit/s.
        const CASES: &[Case] = &[
            ("nothing seen", &[], 1000, &[(0, None)]),
            ("too early", &[stream(0, 1000, 10, 0, 400)], 400, &[(0, None)]),
            ("after the minimum span", &[stream(0, 1000, 10, 0, 600)], 600, &[(0, Some(800_000))]),
            ("full window", &[stream(0, 1000, 10, 0, 5000)], 5000, &[(0, Some(800_000))]),
            (
                "layers apart",
                &[stream(0, 125, 10, 0, 3000), stream(2, 1000, 10, 0, 3000)],
                3000,
                &[(0, Some(100_000)), (1, None), (2, Some(800_000))],
            ),
            (
                "rate change shows after a window",
                &[stream(0, 1000, 10, 0, 3000), stream(0, 125, 10, 3000, 6000)],
                6000,
                &[(0, Some(100_000))],
            ),
            ("stopped layer fades, then is gone", &[stream(1, 1000, 10, 0, 3000)], 6000, &[(1, None)]),
            (
                // The window starts at the bucket edge 2100 ms: 720 kbit over 1.9 s.
                "a silent half window lowers the rate",
                &[stream(1, 1000, 10, 0, 3000)],
                4000,
                &[(1, Some(378_947))],
            ),
            (
                "restarted layer is measured afresh",
                &[stream(1, 1000, 10, 0, 1000), stream(1, 1000, 10, 5000, 5300)],
                5300,
                &[(1, None)],
            ),
            ("layer past the supported count", &[stream(9, 1000, 10, 0, 2000)], 2000, &[(9, None)]),
        ];
        for (name, streams, at, expected) in CASES {
            let start = Instant::now();
            let mut rates = LayerRates::new();
            feed(&mut rates, start, streams);
            let now = start + Duration::from_millis(*at);
            for &(layer, want) in *expected {
                let got = rates.bitrate(layer, now);
                assert!(close(got, want), "{name}: layer {layer}: {got:?} != {want:?}");
            }
        }
    }

    #[test]
    fn bitrates_lists_every_seen_layer() {
        let start = Instant::now();
        let mut rates = LayerRates::new();
        assert!(rates.bitrates(start).is_empty());
        feed(&mut rates, start, &[stream(0, 125, 10, 0, 1000), stream(2, 1000, 10, 500, 1000)]);
        let got = rates.bitrates(start + Duration::from_millis(1000));
        assert_eq!(got.len(), 3);
        assert!(close(got[0], Some(100_000)), "{got:?}");
        assert_eq!(got[1], None);
        assert!(close(got[2], Some(800_000)), "{got:?}");
    }

    #[test]
    fn late_packets_count_only_inside_the_window() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut rates = LayerRates::new();
        feed(&mut rates, start, &[stream(0, 1000, 10, 0, 3000)]);
        let before = rates.bitrate(0, start + ms(3000));
        // A packet stamped long ago (a caller's clock glitch) is ignored.
        rates.on_packet(0, 1_000_000, start + ms(100));
        assert_eq!(rates.bitrate(0, start + ms(3000)), before);
        // One stamped a little earlier, inside the window, counts.
        rates.on_packet(0, 1_000_000, start + ms(2500));
        assert!(rates.bitrate(0, start + ms(3000)) > before);
    }
}
