//! What a track asks for, and what its layers cost.

use std::cmp::Reverse;

use sfu_proto::{TrackKind, TrackSource};

use super::AllocationDecision;
use crate::selector::MAX_LAYERS;

/// Assumed bitrate of an audio track not measured yet: Opus voice at its usual 32 kbit/s plus
/// packet headers.
pub const DEFAULT_AUDIO_BITRATE: u64 = 40_000;

/// Assumed bitrate of video layers 0, 1, 2 before they are measured (browser simulcast at
/// 180p, 360p, 720p). Higher layers double the last value per step.
pub const DEFAULT_LAYER_BITRATES: [u64; 3] = [150_000, 500_000, 1_500_000];

/// A measured layer costs at least its default divided by this. A layer the publisher's encoder
/// is just bringing back (after its own bandwidth or CPU limit) measures a few kbit/s for a while;
/// taken at face value it would "fit" on a link that cannot carry it a second later.
pub const MEASURED_FLOOR_DIVISOR: u64 = 4;

/// Assumed bitrate of video layer `layer` before it is measured (see
/// [`DEFAULT_LAYER_BITRATES`]).
pub fn default_layer_bitrate(layer: u8) -> u64 {
    let known = DEFAULT_LAYER_BITRATES.len();
    match DEFAULT_LAYER_BITRATES.get(usize::from(layer)) {
        Some(&bps) => bps,
        None => {
            let doublings = (usize::from(layer) + 1 - known).min(32) as u32;
            DEFAULT_LAYER_BITRATES[known - 1].saturating_mul(1 << doublings)
        }
    }
}

/// What one subscribed track needs, as input to
/// [`Allocator::allocate`](super::Allocator::allocate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackDemand {
    /// The caller's identifier for the track (unique per subscriber); opaque here.
    pub id: u64,
    /// Audio is served before any video.
    pub kind: TrackKind,
    /// Screen shares are served before cameras.
    pub source: TrackSource,
    /// The track's publisher is the room's active speaker.
    pub active_speaker: bool,
    /// Pixels the subscriber renders the track at (width × height); 0 = unknown.
    pub rendered_area: u32,
    /// The highest layer the subscriber's own preference allows (0 for audio). `None`: the
    /// subscriber paused the track; it gets nothing.
    pub max_layer: Option<u8>,
    /// Measured bitrate per layer (index = layer, lowest first; `None` = not measured yet), one
    /// entry per layer the track has. Empty: a single layer of unknown rate.
    pub layer_bitrates: Vec<Option<u64>>,
    /// Measured bitrate of an audio track, if known.
    pub audio_bitrate: Option<u64>,
}

impl TrackDemand {
    /// Bits per second `decision` costs for this track.
    pub fn cost(&self, decision: AllocationDecision) -> u64 {
        match decision {
            AllocationDecision::Audio => self.audio_bitrate.unwrap_or(DEFAULT_AUDIO_BITRATE),
            AllocationDecision::Layer(layer) => self.layer_cost(layer),
            AllocationDecision::Paused(_) => 0,
        }
    }

    /// What this track costs at its preferred maximum (0 when the subscriber paused it).
    pub fn desired_bps(&self) -> u64 {
        match self.kind {
            TrackKind::Audio if self.max_layer.is_some() => self.cost(AllocationDecision::Audio),
            TrackKind::Audio => 0,
            TrackKind::Video => self.top_layer().map_or(0, |layer| self.layer_cost(layer)),
        }
    }

    /// The highest layer this track may get: the subscriber's maximum, limited to the layers
    /// the track has.
    pub(super) fn top_layer(&self) -> Option<u8> {
        let count = self.layer_bitrates.len().clamp(1, MAX_LAYERS);
        self.max_layer.map(|max| max.min((count - 1) as u8))
    }

    pub(super) fn layer_cost(&self, layer: u8) -> u64 {
        let default = default_layer_bitrate(layer);
        self.layer_bitrates
            .get(usize::from(layer))
            .copied()
            .flatten()
            .map_or(default, |measured| measured.max(default / MEASURED_FLOOR_DIVISOR))
    }

    /// Sort key: audio, then screen share, active speaker, larger area; ties by id.
    pub(super) fn priority(&self) -> (bool, bool, bool, Reverse<u32>, u64) {
        (
            self.kind != TrackKind::Audio,
            self.source != TrackSource::ScreenShare,
            !self.active_speaker,
            Reverse(self.rendered_area),
            self.id,
        )
    }
}
