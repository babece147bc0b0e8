//! Which simulcast layers the publisher is currently sending.
//!
//! Publishers drop their upper layers when their own uplink or CPU is short; a subscriber aimed
//! at a layer that stopped would wait for a keyframe that never comes. A layer counts as active
//! while its packets keep arriving.

use std::time::{Duration, Instant};

use crate::selector::{LayerSet, MAX_LAYERS};

/// A layer with no packet for this long is considered stopped. Long enough to ride out a few
/// frames of a slow screen share, short enough that a subscriber falls back within a couple of
/// seconds.
pub const LAYER_INACTIVE_AFTER: Duration = Duration::from_millis(1500);

/// When each layer of one track last had a packet.
#[derive(Clone, Debug, Default)]
pub struct LayerActivity {
    last_packet: [Option<Instant>; MAX_LAYERS],
    first_packet: Option<Instant>,
}

impl LayerActivity {
    /// Activity with no packet seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a packet of `layer` (layers beyond [`MAX_LAYERS`] are ignored).
    pub fn on_packet(&mut self, layer: u8, now: Instant) {
        if let Some(last) = self.last_packet.get_mut(usize::from(layer)) {
            *last = Some(now);
            self.first_packet.get_or_insert(now);
        }
    }

    /// Starts from what someone who has watched the track longer knows: `layers` are flowing
    /// now, and the grace for layers never seen is already over (they are not being sent). With
    /// no layer given, nothing is known and nothing changes.
    pub fn seed(&mut self, layers: &[u8], now: Instant) {
        if layers.is_empty() {
            return;
        }
        for &layer in layers {
            self.on_packet(layer, now);
        }
        let grace_over = LAYER_INACTIVE_AFTER + Duration::from_millis(1);
        self.first_packet = Some(now.checked_sub(grace_over).unwrap_or(now));
    }

    /// Layers that are active at `now`. A layer never seen counts as active until packets of
    /// other layers have flowed for [`LAYER_INACTIVE_AFTER`]: at the start, every layer the
    /// publisher announced gets the benefit of the doubt.
    pub fn active(&self, now: Instant) -> LayerSet {
        let recent = |at: Instant| now.saturating_duration_since(at) <= LAYER_INACTIVE_AFTER;
        let unseen_active = self.first_packet.is_none_or(recent);
        (0..MAX_LAYERS as u8)
            .filter(|&layer| match self.last_packet[usize::from(layer)] {
                Some(at) => recent(at),
                None => unseen_active,
            })
            .collect()
    }

    /// Until when [`active`](Self::active) gives the same set as at `now`, barring new packets
    /// (which can only add layers): the moment the first of its layers goes quiet for too
    /// long. `None` before any packet: then only a packet changes anything.
    pub fn stable_until(&self, now: Instant) -> Option<Instant> {
        let first = self.first_packet?;
        let unseen_grace_end = (now.saturating_duration_since(first) <= LAYER_INACTIVE_AFTER).then_some(first);
        self.last_packet
            .iter()
            .flatten()
            .copied()
            .filter(|&at| now.saturating_duration_since(at) <= LAYER_INACTIVE_AFTER)
            .chain(unseen_grace_end)
            .min()
            .map(|at| at + LAYER_INACTIVE_AFTER)
    }

    /// Layers that had a packet within [`LAYER_INACTIVE_AFTER`]: what is known to flow, without
    /// the benefit of the doubt [`active`](Self::active) gives layers never seen.
    pub fn recently_seen(&self, now: Instant) -> Vec<u8> {
        (0..MAX_LAYERS as u8)
            .filter(|&layer| {
                self.last_packet[usize::from(layer)]
                    .is_some_and(|at| now.saturating_duration_since(at) <= LAYER_INACTIVE_AFTER)
            })
            .collect()
    }

    /// One more than the highest layer seen so far (0 before any packet).
    pub fn seen_count(&self) -> usize {
        self.last_packet.iter().rposition(Option::is_some).map_or(0, |highest| highest + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, packets as (layer, ms), query time in ms, expected active among layers 0..3)
    type Case = (&'static str, &'static [(u8, u64)], u64, LayerSet);

    #[test]
    fn recently_seen_gives_unseen_layers_no_benefit_of_the_doubt() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut activity = LayerActivity::new();
        assert!(activity.recently_seen(t0).is_empty());
        activity.on_packet(0, ms(0));
        activity.on_packet(1, ms(10));
        assert_eq!(activity.recently_seen(ms(100)), vec![0, 1]);
        assert!(activity.active(ms(100)).contains(2), "active() still expects layer 2");
        activity.on_packet(1, ms(1500));
        assert_eq!(activity.recently_seen(ms(1505)), vec![1], "layer 0 went quiet");
    }

    #[test]
    fn layers_become_inactive_when_packets_stop() {
        let ms = Duration::from_millis;
        let set = |layers: &[u8]| layers.iter().copied().collect::<LayerSet>();
        let cases: &[Case] = &[
            ("nothing seen: all", &[], 10_000, set(&[0, 1, 2])),
            ("early: unseen still active", &[(0, 0), (1, 0)], 1000, set(&[0, 1, 2])),
            ("unseen inactive after grace", &[(0, 0), (1, 0), (0, 1600), (1, 1600)], 1600, set(&[0, 1])),
            ("stopped layer", &[(0, 0), (1, 0), (2, 0), (0, 2000), (1, 2000)], 2000, set(&[0, 1])),
            ("at the limit still active", &[(2, 0)], 1500, set(&[0, 1, 2])),
            ("everything stopped", &[(0, 0), (1, 0), (2, 0)], 5000, LayerSet::EMPTY),
            ("resumed layer", &[(0, 0), (2, 0), (0, 3000), (2, 3000)], 3000, set(&[0, 2])),
        ];
        let start = Instant::now();
        for (name, packets, at, expected) in cases {
            let mut activity = LayerActivity::new();
            for &(layer, t) in *packets {
                activity.on_packet(layer, start + ms(t));
            }
            let active = activity.active(start + ms(*at));
            let first3: LayerSet = (0..3).filter(|&l| active.contains(l)).collect();
            assert_eq!(first3, *expected, "{name}");
        }
    }

    #[test]
    fn the_active_set_holds_until_stable_until_and_changes_right_after() {
        let ms = Duration::from_millis;
        let start = Instant::now();
        // (name, packets as (layer, ms), query time in ms)
        type Case = (&'static str, &'static [(u8, u64)], u64);
        let cases: &[Case] = &[
            ("unseen layers' grace ends first", &[(0, 0), (1, 900)], 1000),
            ("oldest layer goes quiet first", &[(0, 0), (1, 0), (2, 0), (0, 2000), (1, 2500)], 2600),
            ("one layer left", &[(0, 0), (1, 0), (0, 3000)], 3000),
        ];
        for (name, packets, at) in cases {
            let mut activity = LayerActivity::new();
            for &(layer, t) in *packets {
                activity.on_packet(layer, start + ms(t));
            }
            let at = start + ms(*at);
            let until = activity.stable_until(at).expect(name);
            let set = activity.active(at);
            let mut t = at;
            while t <= until {
                assert_eq!(activity.active(t), set, "{name}: changed before {until:?}");
                t += ms(7);
            }
            assert_eq!(activity.active(until), set, "{name}: at the limit");
            assert_ne!(activity.active(until + ms(1)), set, "{name}: nothing changed after");
        }
        assert_eq!(LayerActivity::new().stable_until(start), None, "no packet yet");
    }

    #[test]
    fn seen_count_tracks_highest_layer() {
        let now = Instant::now();
        let mut activity = LayerActivity::new();
        assert_eq!(activity.seen_count(), 0);
        activity.on_packet(2, now);
        assert_eq!(activity.seen_count(), 3);
        activity.on_packet(200, now);
        assert_eq!(activity.seen_count(), 3);
    }

    #[test]
    fn seeding_rules_out_unseen_layers_at_once() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut activity = LayerActivity::new();
        activity.seed(&[0, 1], start);
        assert_eq!(activity.active(start), [0u8, 1].into_iter().collect::<LayerSet>());
        let mut unknown = LayerActivity::new();
        unknown.seed(&[], start);
        assert!(unknown.active(start).contains(2), "an empty seed keeps the benefit of the doubt");
    }
}
