//! A subscribed track as one shard fans it out: who gets it, how its layers flow, and its
//! recent payloads.

use sfu_core::{LayerRates, PacketRing};
use sfu_proto::TrackKind;

use crate::ConnId;

/// Sent packets kept per down track for NACKs: ~1 s of a 1.5 Mbit/s layer.
pub(super) const VIDEO_HISTORY: usize = 512;
pub(super) const AUDIO_HISTORY: usize = 64;

pub(crate) struct Fanout {
    /// Connections on this shard subscribed to the track.
    pub subscribers: Vec<ConnId>,
    /// Bitrate of each layer, as seen passing through this shard.
    pub layer_rates: LayerRates,
    /// The track's recent payloads, every layer's, stored once: the subscribers' NACK
    /// histories hold indices into it. Twice a history's length, so with every layer flowing
    /// it still reaches seconds back, far beyond what a NACK can usefully ask for.
    pub payloads: PacketRing<bytes::Bytes>,
}

impl Fanout {
    pub fn new(kind: TrackKind) -> Self {
        Self {
            subscribers: Vec::new(),
            layer_rates: LayerRates::default(),
            payloads: PacketRing::new(2 * history_capacity(kind)),
        }
    }
}

/// How many sent packets a subscriber's down track of this kind keeps for NACKs.
pub(super) fn history_capacity(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => AUDIO_HISTORY,
        TrackKind::Video => VIDEO_HISTORY,
    }
}
