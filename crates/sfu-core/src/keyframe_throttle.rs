//! Rate limit for keyframe requests (PLI) sent to a publisher.
//!
//! Every subscriber that switches layers or joins wants a keyframe, and a keyframe is large: a
//! burst of PLIs from many subscribers must reach the publisher as one. One throttle lives with
//! each published track (shared by all its subscribers); each forwarder also keeps its own so a
//! single subscriber does not re-ask every packet.

use std::time::{Duration, Instant};

/// Minimum time between two keyframe requests for the same layer: long enough for the publisher
/// to produce and deliver the keyframe, short enough that a lost request is retried quickly.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Remembers, per layer, when a keyframe was last requested.
#[derive(Clone, Debug, Default)]
pub struct KeyframeRequestThrottle {
    /// Indexed by layer; grows to the highest layer asked for (at most 256 entries).
    last_sent: Vec<Option<Instant>>,
}

impl KeyframeRequestThrottle {
    /// A throttle that has sent nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a keyframe request for `layer` may go out now; if so, records it as sent.
    /// At most one request per layer per [`KEYFRAME_REQUEST_INTERVAL`].
    pub fn should_send(&mut self, layer: u8, now: Instant) -> bool {
        if !self.is_allowed(layer, now) {
            return false;
        }
        let index = usize::from(layer);
        if self.last_sent.len() <= index {
            self.last_sent.resize(index + 1, None);
        }
        self.last_sent[index] = Some(now);
        true
    }

    /// Whether a request for `layer` would be allowed now, without recording anything.
    pub fn is_allowed(&self, layer: u8, now: Instant) -> bool {
        self.next_allowed(layer).is_none_or(|at| now >= at)
    }

    /// When the next request for `layer` becomes allowed; `None` if allowed at any time.
    pub fn next_allowed(&self, layer: u8) -> Option<Instant> {
        let last = (*self.last_sent.get(usize::from(layer))?)?;
        Some(last + KEYFRAME_REQUEST_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, requests as (layer, ms since start), expected answers)
    type Case = (&'static str, &'static [(u8, u64)], &'static [bool]);

    #[test]
    fn one_request_per_layer_per_interval() {
        let ms = Duration::from_millis;
        let cases: &[Case] = &[
            ("first request goes out", &[(0, 0)], &[true]),
            ("repeat too soon", &[(0, 0), (0, 499)], &[true, false]),
            ("repeat at the interval", &[(0, 0), (0, 500)], &[true, true]),
            ("layers are independent", &[(0, 0), (1, 10), (2, 20), (1, 30)], &[true, true, true, false]),
            ("refused request does not restart the wait", &[(0, 0), (0, 400), (0, 500)], &[true, false, true]),
            ("clock going backwards is refused", &[(0, 1000), (0, 0)], &[true, false]),
            ("highest layer index", &[(255, 0), (255, 100)], &[true, false]),
        ];
        let start = Instant::now();
        for (name, requests, expected) in cases {
            let mut throttle = KeyframeRequestThrottle::new();
            let got: Vec<bool> =
                requests.iter().map(|&(layer, at)| throttle.should_send(layer, start + ms(at))).collect();
            assert_eq!(&got, expected, "{name}");
        }
    }

    #[test]
    fn next_allowed_reports_the_deadline() {
        let start = Instant::now();
        let mut throttle = KeyframeRequestThrottle::new();
        assert_eq!(throttle.next_allowed(1), None);
        assert!(throttle.should_send(1, start));
        assert_eq!(throttle.next_allowed(1), Some(start + KEYFRAME_REQUEST_INTERVAL));
        assert!(!throttle.is_allowed(1, start));
    }
}
