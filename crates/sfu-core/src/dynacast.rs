//! Dynacast: which simulcast layers a publisher should encode, given what its subscribers want.
//!
//! A publisher's browser encodes every simulcast layer it was asked for, whether or not anyone
//! receives it. The caller aggregates, per published track, the highest layer any subscriber
//! wants (its preference and viewport, not what its bandwidth allows: see below) and gives it
//! to [`Dynacast::set_wanted`]; the answer tells the publisher which layers to encode.
//!
//! * **More** is granted at once: a subscriber waits for the layer it asked for.
//! * **Less** waits [`DYNACAST_PAUSE_DELAY`]: a subscriber that scrolls a tile out of view and
//!   back, or a room that loses and regains a participant, does not make the encoder stop and
//!   restart a layer (each restart costs a keyframe).
//! * **Nobody** (no subscriber, or every one paused the track) pauses every layer, after the same
//!   delay.
//!
//! Bandwidth limits do not lower the wanted layer: a subscriber held on a low layer by its
//! downlink moves up only after probing, and probing needs the higher layer flowing to switch to
//! promptly. Counting the allocation would also loop: a paused layer cannot be allocated, so it
//! would never be wanted again.

use std::time::{Duration, Instant};

/// How long a layer nobody wants keeps being encoded before the publisher is told to pause it.
/// Longer than the allocator's [`MIN_SWITCH_INTERVAL`](crate::MIN_SWITCH_INTERVAL), so a
/// subscriber's brief dip does not reach the publisher.
pub const DYNACAST_PAUSE_DELAY: Duration = Duration::from_secs(3);

/// What to tell a publisher: encode layers `0..=highest`, or nothing (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeLayers {
    /// Highest layer index to encode (0 = lowest); `None`: encode no layer.
    pub highest: Option<u8>,
}

impl EncodeLayers {
    /// Whether layer `layer` is to be encoded.
    pub fn is_active(&self, layer: u8) -> bool {
        self.highest.is_some_and(|highest| layer <= highest)
    }
}

/// The dynacast state of one published simulcast track.
#[derive(Clone, Debug)]
pub struct Dynacast {
    top: u8,
    /// What the publisher was last told (it starts encoding every layer).
    told: EncodeLayers,
    wanted: Option<u8>,
    /// When `told` may come down to `wanted`.
    lower_at: Option<Instant>,
}

impl Dynacast {
    /// A track with `layer_count` layers, all encoded, that nobody wants yet: unless a
    /// subscriber shows up, its layers are paused [`DYNACAST_PAUSE_DELAY`] after `now`.
    pub fn new(layer_count: usize, now: Instant) -> Self {
        let top = u8::try_from(layer_count.saturating_sub(1)).unwrap_or(u8::MAX);
        Self {
            top,
            told: EncodeLayers { highest: Some(top) },
            wanted: None,
            lower_at: Some(now + DYNACAST_PAUSE_DELAY),
        }
    }

    /// The highest layer any subscriber wants now (`None`: nobody wants the track). Returns
    /// what to tell the publisher when that changes at once (more layers).
    pub fn set_wanted(&mut self, wanted: Option<u8>, now: Instant) -> Option<EncodeLayers> {
        self.wanted = wanted.map(|layer| layer.min(self.top));
        if self.wanted > self.told.highest {
            self.lower_at = None;
            return self.tell(self.wanted);
        }
        if self.wanted == self.told.highest {
            self.lower_at = None;
        } else if self.lower_at.is_none() {
            self.lower_at = Some(now + DYNACAST_PAUSE_DELAY);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lower_at
    }

    /// Pauses the layers nobody wanted for [`DYNACAST_PAUSE_DELAY`]; returns what to tell the
    /// publisher, if anything changed.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<EncodeLayers> {
        match self.lower_at {
            Some(at) if at <= now => {
                self.lower_at = None;
                self.tell(self.wanted)
            }
            _ => None,
        }
    }

    /// What the publisher was last told.
    pub fn encoding(&self) -> EncodeLayers {
        self.told
    }

    fn tell(&mut self, highest: Option<u8>) -> Option<EncodeLayers> {
        let next = EncodeLayers { highest };
        (next != self.told).then(|| {
            self.told = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn layers(highest: Option<u8>) -> Option<EncodeLayers> {
        Some(EncodeLayers { highest })
    }

    #[test]
    fn a_track_nobody_subscribes_to_is_paused_after_the_delay() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(3, t0);
        assert_eq!(d.poll_timeout(), Some(t0 + DYNACAST_PAUSE_DELAY));
        assert_eq!(d.handle_timeout(t0 + DYNACAST_PAUSE_DELAY - MS(1)), None);
        assert_eq!(d.handle_timeout(t0 + DYNACAST_PAUSE_DELAY), layers(None));
        assert_eq!(d.poll_timeout(), None);
        assert!(!d.encoding().is_active(0));
    }

    #[test]
    fn a_subscriber_wanting_the_top_keeps_every_layer_without_a_message() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(3, t0);
        assert_eq!(d.set_wanted(Some(2), t0 + MS(100)), None);
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(d.handle_timeout(t0 + MS(10_000)), None);
        assert!(d.encoding().is_active(2));
    }

    #[test]
    fn more_is_granted_at_once_and_less_waits() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(3, t0);
        assert_eq!(d.set_wanted(Some(0), t0), None);
        assert_eq!(d.handle_timeout(t0 + DYNACAST_PAUSE_DELAY), layers(Some(0)));
        let t1 = t0 + MS(5_000);
        assert_eq!(d.set_wanted(Some(1), t1), layers(Some(1)));
        assert_eq!(d.set_wanted(Some(7), t1), layers(Some(2)), "clamped to the track's top layer");
        assert_eq!(d.set_wanted(None, t1 + MS(10)), None);
        assert_eq!(d.handle_timeout(t1 + MS(10) + DYNACAST_PAUSE_DELAY), layers(None));
    }

    #[test]
    fn a_dip_shorter_than_the_delay_reaches_nobody() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(3, t0);
        d.set_wanted(Some(2), t0);
        assert_eq!(d.set_wanted(Some(0), t0 + MS(100)), None);
        assert_eq!(d.set_wanted(Some(2), t0 + MS(2_000)), None);
        assert_eq!(d.poll_timeout(), None, "the pending pause is cancelled");
        assert_eq!(d.handle_timeout(t0 + MS(10_000)), None);
    }

    #[test]
    fn a_partial_return_keeps_the_pending_pause_for_what_is_still_unwanted() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(3, t0);
        d.set_wanted(Some(2), t0);
        d.set_wanted(Some(0), t0 + MS(100));
        assert_eq!(d.set_wanted(Some(1), t0 + MS(1_000)), None);
        assert_eq!(d.handle_timeout(t0 + MS(100) + DYNACAST_PAUSE_DELAY), layers(Some(1)));
    }

    #[test]
    fn a_single_layer_track_is_paused_and_resumed_whole() {
        let t0 = Instant::now();
        let mut d = Dynacast::new(1, t0);
        assert_eq!(d.handle_timeout(t0 + DYNACAST_PAUSE_DELAY), layers(None));
        assert_eq!(d.set_wanted(Some(2), t0 + MS(4_000)), layers(Some(0)));
    }
}
