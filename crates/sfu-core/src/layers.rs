//! The quality order of a track's simulcast layers, whatever the publisher named them.
//!
//! Rids carry no order (`q/h/f`, `l/m/h`, `0/1/2`, or anything else), and clients list them in
//! the SDP in either direction. The order comes, best source first, from resolutions (learned
//! from keyframes, else announced as hints), then from observed bitrate once there is enough of
//! it, and until then from the SDP order read as lowest first.

use std::time::{Duration, Instant};

use crate::selector::MAX_LAYERS;

/// How long every layer must have been observed before bitrates decide the order: long enough
/// to average over several keyframes and the publisher's start-up ramp.
pub const BITRATE_RANK_AFTER: Duration = Duration::from_secs(2);

/// What the current order is based on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderBasis {
    /// The SDP order, lowest first: nothing better is known yet.
    SdpOrder,
    /// Observed bitrates (fixed once decided, so layer indices do not flap).
    Bitrate,
    /// Resolutions of every layer, by pixel count.
    Resolution,
}

/// One rid and what is known about it.
#[derive(Clone, Debug)]
struct RidLayer {
    rid: String,
    hint: Option<(u16, u16)>,
    learned: Option<(u16, u16)>,
    bytes: u64,
    first_seen: Option<Instant>,
}

impl RidLayer {
    fn resolution(&self) -> Option<(u16, u16)> {
        self.learned.or(self.hint)
    }

    /// Average bitrate since first seen, or `None` while observed for too short a time.
    fn bits_per_second(&self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.first_seen?);
        if elapsed < BITRATE_RANK_AFTER {
            return None;
        }
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).max(1);
        Some(self.bytes.saturating_mul(8_000) / millis)
    }
}

/// The order of one track's simulcast layers, lowest quality first.
#[derive(Clone, Debug)]
pub struct LayerOrder {
    /// In SDP order.
    layers: Vec<RidLayer>,
    /// Indices into `layers`, lowest quality first.
    order: Vec<usize>,
    basis: OrderBasis,
}

impl LayerOrder {
    /// Layers from the rids in SDP order, each with an optional `(width, height)` hint.
    /// Repeated rids are ignored, and rids past [`MAX_LAYERS`].
    pub fn new<S: Into<String>>(rids: impl IntoIterator<Item = (S, Option<(u16, u16)>)>) -> Self {
        let mut layers: Vec<RidLayer> = Vec::new();
        for (rid, hint) in rids {
            let rid = rid.into();
            if layers.len() < MAX_LAYERS && !layers.iter().any(|layer| layer.rid == rid) {
                let hint = hint.filter(|&(w, h)| w > 0 && h > 0);
                layers.push(RidLayer { rid, hint, learned: None, bytes: 0, first_seen: None });
            }
        }
        let mut order = Self { order: (0..layers.len()).collect(), layers, basis: OrderBasis::SdpOrder };
        order.rank_by_resolution();
        order
    }

    /// The layer index of `rid` (0 = lowest quality).
    pub fn index_of(&self, rid: &str) -> Option<u8> {
        let position = self.order.iter().position(|&i| self.layers[i].rid == rid)?;
        u8::try_from(position).ok()
    }

    /// The rid at layer index `index`.
    pub fn rid_at(&self, index: u8) -> Option<&str> {
        let &i = self.order.get(usize::from(index))?;
        Some(self.layers[i].rid.as_str())
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the track has no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// What the current order is based on.
    pub fn basis(&self) -> OrderBasis {
        self.basis
    }

    /// Resolutions in layer order (learned, else hinted), as [`Forwarder::set_layers`] takes.
    ///
    /// [`Forwarder::set_layers`]: crate::Forwarder::set_layers
    pub fn resolutions(&self) -> Vec<Option<(u16, u16)>> {
        self.order.iter().map(|&i| self.layers[i].resolution()).collect()
    }

    /// Counts `bytes` of media received on `rid`. Returns whether the order changed (then layer
    /// indices handed out before are stale).
    pub fn observe(&mut self, rid: &str, bytes: usize, now: Instant) -> bool {
        if self.basis != OrderBasis::SdpOrder {
            return false;
        }
        let Some(layer) = self.layers.iter_mut().find(|layer| layer.rid == rid) else {
            return false;
        };
        layer.first_seen.get_or_insert(now);
        layer.bytes = layer.bytes.saturating_add(bytes as u64);
        self.rank_by_bitrate(now)
    }

    /// Records the resolution seen in a keyframe of `rid`; it overrides any hint. Returns
    /// whether the order changed.
    pub fn set_resolution(&mut self, rid: &str, width: u16, height: u16) -> bool {
        if width == 0 || height == 0 {
            return false;
        }
        let Some(layer) = self.layers.iter_mut().find(|layer| layer.rid == rid) else {
            return false;
        };
        layer.learned = Some((width, height));
        self.rank_by_resolution()
    }

    /// Orders by pixel count once every layer's resolution is known (ties keep SDP order).
    fn rank_by_resolution(&mut self) -> bool {
        if self.layers.is_empty() || self.layers.iter().any(|layer| layer.resolution().is_none()) {
            return false;
        }
        let area = |layer: &RidLayer| layer.resolution().map_or(0, |(w, h)| u32::from(w) * u32::from(h));
        let mut order: Vec<usize> = (0..self.layers.len()).collect();
        order.sort_by_key(|&i| area(&self.layers[i]));
        self.basis = OrderBasis::Resolution;
        self.replace_order(order)
    }

    /// Orders by average bitrate once every layer has been observed long enough.
    fn rank_by_bitrate(&mut self, now: Instant) -> bool {
        let rates: Option<Vec<u64>> = self.layers.iter().map(|layer| layer.bits_per_second(now)).collect();
        let Some(rates) = rates else {
            return false;
        };
        let mut order: Vec<usize> = (0..self.layers.len()).collect();
        order.sort_by_key(|&i| rates[i]);
        self.basis = OrderBasis::Bitrate;
        self.replace_order(order)
    }

    fn replace_order(&mut self, order: Vec<usize>) -> bool {
        let changed = order != self.order;
        self.order = order;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Something learned about a layer, at a time in milliseconds.
    #[derive(Clone, Copy, Debug)]
    enum Event {
        Observe(&'static str, usize, u64),
        Learn(&'static str, u16, u16),
    }
    use Event::{Learn, Observe};

    const QVGA: Option<(u16, u16)> = Some((320, 180));
    const VGA: Option<(u16, u16)> = Some((640, 360));
    const HD: Option<(u16, u16)> = Some((1280, 720));

    /// Bytes for `kbps` over 100 ms.
    fn per_100ms(kbps: usize) -> usize {
        kbps * 100 / 8
    }

    /// Each rid sending at its bitrate (kbps) every 100 ms from `from_ms` up to `to_ms`.
    fn traffic(rates: &[(&'static str, usize)], from_ms: u64, to_ms: u64) -> Vec<Event> {
        (from_ms..=to_ms)
            .step_by(100)
            .flat_map(|at| rates.iter().map(move |&(rid, kbps)| Observe(rid, per_100ms(kbps), at)))
            .collect()
    }

    /// (name, rids in SDP order with hints, events, expected basis, expected rids lowest first)
    type Case<'a> = (&'a str, &'a [(&'a str, Option<(u16, u16)>)], &'a [Event], OrderBasis, &'a [&'a str]);

    #[test]
    fn orders_layers_whatever_their_names() {
        let bitrates = traffic(&[("a", 1500), ("b", 150), ("c", 500)], 0, 2000);
        let short = traffic(&[("a", 1500), ("b", 150), ("c", 500)], 0, 1900);
        let one_silent = traffic(&[("a", 1500), ("b", 150)], 0, 3000);
        let late_layer: Vec<Event> =
            [traffic(&[("a", 1500), ("b", 150)], 0, 3000), traffic(&[("c", 500)], 1500, 3500)].concat();
        let cases: &[Case<'_>] = &[
            (
                "q/h/f in SDP order",
                &[("q", None), ("h", None), ("f", None)],
                &[],
                OrderBasis::SdpOrder,
                &["q", "h", "f"],
            ),
            ("l/m/h with hints", &[("l", QVGA), ("m", VGA), ("h", HD)], &[], OrderBasis::Resolution, &["l", "m", "h"]),
            ("0/1/2", &[("0", None), ("1", None), ("2", None)], &[], OrderBasis::SdpOrder, &["0", "1", "2"]),
            (
                "reversed SDP order with hints",
                &[("f", HD), ("h", VGA), ("q", QVGA)],
                &[],
                OrderBasis::Resolution,
                &["q", "h", "f"],
            ),
            (
                "partial hints keep SDP order",
                &[("f", HD), ("h", None), ("q", QVGA)],
                &[],
                OrderBasis::SdpOrder,
                &["f", "h", "q"],
            ),
            (
                "bitrate decides after 2 s",
                &[("a", None), ("b", None), ("c", None)],
                &bitrates,
                OrderBasis::Bitrate,
                &["b", "c", "a"],
            ),
            (
                "bitrate not yet after 1.9 s",
                &[("a", None), ("b", None), ("c", None)],
                &short,
                OrderBasis::SdpOrder,
                &["a", "b", "c"],
            ),
            (
                "bitrate waits for a silent layer",
                &[("a", None), ("b", None), ("c", None)],
                &one_silent,
                OrderBasis::SdpOrder,
                &["a", "b", "c"],
            ),
            (
                "late layer ranked by its own rate",
                &[("a", None), ("b", None), ("c", None)],
                &late_layer,
                OrderBasis::Bitrate,
                &["b", "c", "a"],
            ),
            (
                "learned resolutions override hints",
                &[("x", HD), ("y", VGA)],
                &[Learn("x", 320, 180)],
                OrderBasis::Resolution,
                &["x", "y"],
            ),
            (
                "learned resolution completes hints",
                &[("f", HD), ("h", None), ("q", QVGA)],
                &[Learn("h", 640, 360)],
                OrderBasis::Resolution,
                &["q", "h", "f"],
            ),
            (
                "resolutions override a bitrate order",
                &[("a", None), ("b", None), ("c", None)],
                &[bitrates.as_slice(), &[Learn("a", 320, 180), Learn("b", 1280, 720), Learn("c", 640, 360)]].concat(),
                OrderBasis::Resolution,
                &["a", "c", "b"],
            ),
            (
                "zero size ignored",
                &[("a", None), ("b", None)],
                &[Learn("a", 0, 0), Learn("b", 10, 10)],
                OrderBasis::SdpOrder,
                &["a", "b"],
            ),
            (
                "unknown rid ignored",
                &[("a", None)],
                &[Learn("zz", 10, 10), Observe("zz", 9, 0)],
                OrderBasis::SdpOrder,
                &["a"],
            ),
            ("repeated rid ignored", &[("a", None), ("a", None), ("b", None)], &[], OrderBasis::SdpOrder, &["a", "b"]),
        ];
        let start = Instant::now();
        for (name, rids, events, basis, expected) in cases {
            let mut order = LayerOrder::new(rids.iter().copied());
            for event in events.iter() {
                match *event {
                    Observe(rid, bytes, at) => {
                        order.observe(rid, bytes, start + Duration::from_millis(at));
                    }
                    Learn(rid, width, height) => {
                        order.set_resolution(rid, width, height);
                    }
                }
            }
            let got: Vec<&str> = (0..order.len() as u8).filter_map(|i| order.rid_at(i)).collect();
            assert_eq!(&got, expected, "{name}");
            assert_eq!(order.basis(), *basis, "{name}");
            for (index, rid) in expected.iter().enumerate() {
                assert_eq!(order.index_of(rid), Some(index as u8), "{name}: {rid}");
            }
        }
    }

    #[test]
    fn reports_changes_and_resolutions() {
        let start = Instant::now();
        let mut order = LayerOrder::new([("hi", None), ("lo", None)]);
        assert_eq!(order.index_of("missing"), None);
        assert_eq!(order.resolutions(), vec![None, None]);
        assert!(!order.observe("hi", 10_000, start));
        assert!(!order.observe("lo", 100, start));
        assert!(order.observe("lo", 100, start + BITRATE_RANK_AFTER), "bitrate reorders");
        assert!(!order.observe("hi", 10_000, start + BITRATE_RANK_AFTER * 2), "bitrate order is fixed");
        assert!(!order.set_resolution("lo", 320, 180));
        assert!(!order.set_resolution("hi", 1280, 720), "same order, now by resolution");
        assert_eq!(order.basis(), OrderBasis::Resolution);
        assert_eq!(order.resolutions(), vec![QVGA, HD]);
        assert!(order.set_resolution("lo", 1920, 1080), "a learned size can change the order");
        assert_eq!(order.rid_at(0), Some("hi"));
    }
}
