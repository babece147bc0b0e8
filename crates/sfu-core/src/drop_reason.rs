//! Why the router did not forward a packet. Every drop carries one of these, so operators can see
//! in metrics where media goes missing.

use std::fmt;

/// The reason one packet was not forwarded to one subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The subscription is paused or the published track is muted.
    Paused,
    /// The packet belongs to a simulcast layer this subscriber is not receiving.
    NotTargetLayer,
    /// A layer is chosen but no keyframe of it has arrived yet, so a decoder could not use it.
    AwaitingKeyframe,
    /// The packet is older than what was already sent and its output slot is gone.
    OutOfOrderTooOld,
    /// The same packet was already forwarded (or deliberately skipped).
    Duplicate,
    /// The packet carries only padding, which the subscriber has no use for.
    Padding,
    /// The track has no layer that can be forwarded right now.
    NoLayerAvailable,
    /// The subscriber's connection did not negotiate the packet's payload type.
    PayloadTypeNotNegotiated,
    /// The packet could not be parsed, or the one built for the subscriber could not be written.
    Malformed,
    /// The subscriber's connection is not (or no longer) up: nothing can be sent yet.
    NotConnected,
    /// The subscriber's bandwidth cannot carry even the track's lowest layer right now (see
    /// [`PauseReason::Bandwidth`](crate::PauseReason::Bandwidth)).
    PausedForBandwidth,
    /// The subscriber's connection has no SRTP context for its media (its DTLS handshake gave
    /// none the shard could use) or protecting the packet failed.
    SrtpFailed,
    /// An audio track not among the room's loudest speakers, in a room large enough for top-N
    /// audio (see [`LoudestSpeakers`](crate::LoudestSpeakers)).
    NotLoudest,
}

impl DropReason {
    /// Every reason, so metrics can register all label values up front.
    pub const ALL: &'static [DropReason] = &[
        DropReason::Paused,
        DropReason::NotTargetLayer,
        DropReason::AwaitingKeyframe,
        DropReason::OutOfOrderTooOld,
        DropReason::Duplicate,
        DropReason::Padding,
        DropReason::NoLayerAvailable,
        DropReason::PayloadTypeNotNegotiated,
        DropReason::Malformed,
        DropReason::NotConnected,
        DropReason::PausedForBandwidth,
        DropReason::SrtpFailed,
        DropReason::NotLoudest,
    ];

    /// A snake_case label, stable across releases (used as a Prometheus label value).
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Paused => "paused",
            DropReason::NotTargetLayer => "not_target_layer",
            DropReason::AwaitingKeyframe => "awaiting_keyframe",
            DropReason::OutOfOrderTooOld => "out_of_order_too_old",
            DropReason::Duplicate => "duplicate",
            DropReason::Padding => "padding",
            DropReason::NoLayerAvailable => "no_layer_available",
            DropReason::PayloadTypeNotNegotiated => "payload_type_not_negotiated",
            DropReason::Malformed => "malformed",
            DropReason::NotConnected => "not_connected",
            DropReason::PausedForBandwidth => "paused_for_bandwidth",
            DropReason::SrtpFailed => "srtp_failed",
            DropReason::NotLoudest => "not_loudest",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_unique_snake_case() {
        let labels: HashSet<&str> = DropReason::ALL.iter().map(DropReason::as_str).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        for label in labels {
            assert!(label.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{label}");
        }
    }

    #[test]
    fn all_lists_every_variant() {
        // Update the count together with ALL when a variant is added.
        assert_eq!(DropReason::ALL.len(), 13);
        assert_eq!(DropReason::Padding.to_string(), "padding");
    }
}
