//! Shares one subscriber's estimated bandwidth among the tracks it receives.
//!
//! The caller (the subscriber's egress) keeps one [`Allocator`] and calls
//! [`Allocator::allocate`] whenever the estimate, a track's measured rates, or the subscriber's
//! wishes change, and when [`Allocator::poll_timeout`] passes. It applies each
//! [`AllocationDecision`] to the track's [`Forwarder`](crate::Forwarder)
//! ([`Forwarder::set_bandwidth_allocation`](crate::Forwarder::set_bandwidth_allocation)), tells
//! the client when a track becomes paused or resumes, and feeds
//! [`Allocations::desired_bps`] / [`Allocations::blocked_up_switch`] to the bandwidth estimator
//! (desired rate, probe target).
//!
//! # Rules
//!
//! 1. **Audio first.** Every audio track the subscriber has not paused is allocated, even when
//!    the estimate cannot hold it (audio is small and matters most).
//! 2. **Then video, by priority:** screen share, then the active speaker, then larger rendered
//!    area, then the rest (unknown area last; ties by id, so input order never matters). Each
//!    track gets the highest layer at or below its preferred maximum whose bitrate fits in what
//!    higher-priority tracks left.
//! 3. **Pause.** When not even layer 0 fits, the track gets [`PauseReason::Bandwidth`].
//! 4. **Hysteresis**, per track:
//!    * a down-switch (or pause) happens at once when the current layer no longer fits:
//!      congestion must be relieved fast;
//!    * an up-switch (or resume) needs room with a margin: the estimate must reach the total of
//!      higher-priority tracks plus the higher layer, plus [`UP_SWITCH_MARGIN_PERCENT`];
//!    * and it waits until [`MIN_SWITCH_INTERVAL`] after that track's previous switch. A held
//!      up-switch keeps its room reserved, so lower-priority tracks do not take it meanwhile
//!      (and lose it again a moment later).
//!
//!    A new track, one the subscriber just un-paused, or one whose preferred maximum dropped
//!    below its current layer is placed at once on the best layer that fits. After the subscriber
//!    changed its wishes ([`Allocator::on_request`]), an up-switch needs room but does not wait
//!    for [`MIN_SWITCH_INTERVAL`]: it answers a request, not a wandering estimate. (A layer the
//!    publisher encodes again is not a request: its return is held like any up-switch, so a
//!    publisher whose layers flap is not asked for a keyframe at every flap.)
//!
//! # Prices
//!
//! A layer costs its measured bitrate ([`LayerRates`](crate::LayerRates)); until that is known,
//! [`default_layer_bitrate`] (150 k / 500 k / 1.5 Mbit/s for layers 0 / 1 / 2, typical of
//! browser simulcast at 180p / 360p / 720p). Audio without a measurement costs
//! [`DEFAULT_AUDIO_BITRATE`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sfu_proto::TrackKind;

mod choose;
mod demand;
#[cfg(test)]
mod tests;

use choose::{Budget, Choice, TrackState};
pub use demand::{
    DEFAULT_AUDIO_BITRATE, DEFAULT_LAYER_BITRATES, MEASURED_FLOOR_DIVISOR, TrackDemand, default_layer_bitrate,
};

/// Least time between two switches of one track, unless the current layer no longer fits (a
/// down-switch for congestion is never held back). Each switch costs a keyframe and a visible
/// change of quality; a switch every 2 s at most keeps the picture calm while the estimate
/// wanders.
pub const MIN_SWITCH_INTERVAL: Duration = Duration::from_secs(2);

/// An up-switch needs the estimate to exceed what it would need by this many percent, so an
/// estimate hovering around a layer's threshold does not flap between two layers.
pub const UP_SWITCH_MARGIN_PERCENT: u64 = 10;

/// What one track gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocationDecision {
    /// An audio track: forward it.
    Audio,
    /// A video track: forward at most this layer.
    Layer(u8),
    /// Forward nothing, for this reason.
    Paused(PauseReason),
}

/// Why a track gets nothing; tell the client, and count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseReason {
    /// Not even the lowest layer fits in the subscriber's bandwidth; resumes when room returns.
    Bandwidth,
    /// The subscriber paused the track itself.
    Subscriber,
}

impl PauseReason {
    /// Every reason, so metrics can register all label values up front.
    pub const ALL: &'static [PauseReason] = &[PauseReason::Bandwidth, PauseReason::Subscriber];

    /// A snake_case label, stable across releases (a metrics label and the client's reason).
    pub fn as_str(&self) -> &'static str {
        match self {
            PauseReason::Bandwidth => "bandwidth",
            PauseReason::Subscriber => "subscriber",
        }
    }
}

impl std::fmt::Display for PauseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// [`TrackDemand::id`].
    pub id: u64,
    /// Forward the audio, at most this video layer, or nothing.
    pub decision: AllocationDecision,
}

/// A track that wants a higher layer but lacks room: probe to `needed_bps` to find out whether
/// the path can carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedUpSwitch {
    /// [`TrackDemand::id`].
    pub id: u64,
    /// The layer it would move to next (0 for a track paused for bandwidth).
    pub layer: u8,
    /// The estimate at which the up-switch would be allowed (margin included).
    pub needed_bps: u64,
}

/// The result of one [`Allocator::allocate`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocations {
    /// One per input track, in input order.
    pub tracks: Vec<Allocation>,
    /// What the decisions cost together (may exceed the estimate only through audio).
    pub allocated_bps: u64,
    /// What every track would cost at its preferred maximum (see [`Allocator::desired_bps`]).
    pub desired_bps: u64,
    /// The highest-priority track whose up-switch waits for room, if any.
    pub blocked_up_switch: Option<BlockedUpSwitch>,
}

impl Allocations {
    /// The decision for track `id`, if it was in the input.
    pub fn decision(&self, id: u64) -> Option<AllocationDecision> {
        self.tracks.iter().find(|a| a.id == id).map(|a| a.decision)
    }
}

/// Bandwidth allocation state of one subscriber: each track's last decision and when it last
/// switched.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    tracks: HashMap<u64, TrackState>,
    /// When an up-switch held back by [`MIN_SWITCH_INTERVAL`] becomes allowed.
    next_check: Option<Instant>,
}

impl Allocator {
    /// An allocator that has decided nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares `estimate_bps` among `tracks` (ids unique) at `now`. Tracks absent from `tracks`
    /// are forgotten: given again later, they start afresh.
    pub fn allocate(&mut self, estimate_bps: u64, tracks: &[TrackDemand], now: Instant) -> Allocations {
        let mut order: Vec<usize> = (0..tracks.len()).collect();
        order.sort_by_key(|&i| tracks[i].priority());
        let mut decisions = vec![AllocationDecision::Paused(PauseReason::Subscriber); tracks.len()];
        let mut budget = Budget::new(estimate_bps);
        let mut states = HashMap::with_capacity(tracks.len());
        let mut blocked_up_switch = None;
        self.next_check = None;
        for i in order {
            let track = &tracks[i];
            let previous = self.tracks.get(&track.id).copied();
            let choice = match track.kind {
                TrackKind::Audio => Choice::audio(track),
                TrackKind::Video => choose::video(track, previous, &budget, now),
            };
            budget.take(track.cost(choice.decision), choice.reserve);
            if let Some(at) = choice.held_until {
                self.next_check = Some(self.next_check.map_or(at, |next| next.min(at)));
            }
            if blocked_up_switch.is_none() {
                blocked_up_switch =
                    choice.blocked.map(|(layer, needed_bps)| BlockedUpSwitch { id: track.id, layer, needed_bps });
            }
            let last_switch = match previous {
                Some(state) if state.decision == choice.decision => state.last_switch,
                _ => now,
            };
            states.insert(track.id, TrackState { decision: choice.decision, last_switch, requested: false });
            decisions[i] = choice.decision;
        }
        self.tracks = states;
        Allocations {
            tracks: tracks
                .iter()
                .zip(decisions)
                .map(|(track, decision)| Allocation { id: track.id, decision })
                .collect(),
            allocated_bps: budget.used(),
            desired_bps: self.desired_bps(tracks),
            blocked_up_switch,
        }
    }

    /// The subscriber changed its wishes for track `id` (layer, size, pause): the next
    /// [`allocate`](Self::allocate) may move it up at once if there is room.
    pub fn on_request(&mut self, id: u64) {
        if let Some(state) = self.tracks.get_mut(&id) {
            state.requested = true;
        }
    }

    /// What all `tracks` would cost at their preferred maximum layers. While this exceeds the
    /// estimate, the caller may probe for more (and tells the estimator it wants this much).
    pub fn desired_bps(&self, tracks: &[TrackDemand]) -> u64 {
        tracks.iter().map(TrackDemand::desired_bps).fold(0, u64::saturating_add)
    }

    /// When an up-switch that the last [`allocate`](Self::allocate) held back (only because
    /// the track switched less than [`MIN_SWITCH_INTERVAL`] ago) becomes allowed: call
    /// `allocate` again then. `None` when nothing is held back.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_check
    }
}
