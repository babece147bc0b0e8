//! The per-track rules: which layer a track gets given what higher-priority tracks took, its
//! previous decision and when it last switched.

use std::time::Instant;

use super::{AllocationDecision, MIN_SWITCH_INTERVAL, PauseReason, TrackDemand, UP_SWITCH_MARGIN_PERCENT};
use AllocationDecision::{Layer, Paused};

/// What the allocator remembers about one track between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TrackState {
    pub(super) decision: AllocationDecision,
    /// When `decision` was made (the track's last switch).
    pub(super) last_switch: Instant,
    /// The subscriber changed its wishes since: the next up-switch is a request, not held back
    /// by the time since `last_switch` ([`super::Allocator::on_request`]).
    pub(super) requested: bool,
}

/// The estimate and what higher-priority tracks took of it so far.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    estimate: u64,
    /// What the decisions so far cost: a current layer must fit in what this leaves.
    used: u64,
    /// `used`, but counting held up-switches at their higher layer: an up-switch must have room
    /// in what this leaves.
    reserved: u64,
}

impl Budget {
    pub(super) fn new(estimate: u64) -> Self {
        Self { estimate, used: 0, reserved: 0 }
    }

    /// Counts a decision costing `cost`, holding `reserve` for a pending up-switch (if larger).
    pub(super) fn take(&mut self, cost: u64, reserve: u64) {
        self.used = self.used.saturating_add(cost);
        self.reserved = self.reserved.saturating_add(cost.max(reserve));
    }

    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// Whether `cost` fits in what is left.
    fn fits(&self, cost: u64) -> bool {
        self.used.saturating_add(cost) <= self.estimate
    }

    /// The estimate at which an up-switch to something costing `cost` is allowed.
    fn needed_for(&self, cost: u64) -> u64 {
        let total = self.reserved.saturating_add(cost);
        total.saturating_add(total.saturating_mul(UP_SWITCH_MARGIN_PERCENT).div_ceil(100))
    }

    /// Whether there is room, margin included, to move up to something costing `cost`.
    fn has_room(&self, cost: u64) -> bool {
        self.needed_for(cost) <= self.estimate
    }
}

/// The decision for one track, and what the allocator should note about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Choice {
    pub(super) decision: AllocationDecision,
    /// Bits per second to hold for an up-switch allowed by room but not yet by time.
    pub(super) reserve: u64,
    /// When that held up-switch becomes allowed.
    pub(super) held_until: Option<Instant>,
    /// The next layer the track wants but lacks room for, and the estimate it needs.
    pub(super) blocked: Option<(u8, u64)>,
}

impl Choice {
    fn settled(decision: AllocationDecision) -> Self {
        Self { decision, reserve: 0, held_until: None, blocked: None }
    }

    /// Audio always gets through unless the subscriber paused it.
    pub(super) fn audio(track: &TrackDemand) -> Self {
        Self::settled(match track.max_layer {
            Some(_) => AllocationDecision::Audio,
            None => Paused(PauseReason::Subscriber),
        })
    }
}

/// The decision for a video track. A track left below its top layer for lack of room (not
/// merely held by time) names the next layer up and the estimate it needs.
pub(super) fn video(track: &TrackDemand, previous: Option<TrackState>, budget: &Budget, now: Instant) -> Choice {
    let Some(top) = track.top_layer() else {
        return Choice::settled(Paused(PauseReason::Subscriber));
    };
    let mut choice = decide_video(track, top, previous, budget, now);
    let next = match choice.decision {
        Layer(layer) if layer < top => Some(layer + 1),
        Paused(PauseReason::Bandwidth) => Some(0),
        _ => None,
    };
    if let Some(next) = next
        && choice.held_until.is_none()
    {
        let needed = budget.needed_for(track.layer_cost(next));
        choice.blocked = (needed > budget.estimate).then_some((next, needed));
    }
    choice
}

fn decide_video(track: &TrackDemand, top: u8, previous: Option<TrackState>, budget: &Budget, now: Instant) -> Choice {
    let cost = |layer: u8| track.layer_cost(layer);
    // An up-switch the subscriber asked for is not held back by the last switch's time.
    let hold_since = |state: &TrackState| (!state.requested).then_some(state.last_switch);
    // Highest layer that fits now, or a pause: for placing a track and for down-switches.
    let best_fit =
        || (0..=top).rev().find(|&layer| budget.fits(cost(layer))).map_or(Paused(PauseReason::Bandwidth), Layer);
    match previous {
        Some(state @ TrackState { decision: Layer(current), .. }) if current <= top => {
            if !budget.fits(cost(current)) {
                return Choice::settled(best_fit());
            }
            if current == top {
                return Choice::settled(Layer(current));
            }
            move_up(track, Layer(current), current + 1, top, budget, hold_since(&state), now)
        }
        Some(state @ TrackState { decision: Paused(PauseReason::Bandwidth), .. }) => {
            move_up(track, Paused(PauseReason::Bandwidth), 0, top, budget, hold_since(&state), now)
        }
        // A new track, one the subscriber just un-paused, or one whose maximum dropped below
        // its current layer: the best that fits now.
        _ => Choice::settled(best_fit()),
    }
}

/// Moves a track now at `current` up to the highest layer in `lowest..=top` that has room, if
/// its last switch (`last_switch`, None: not to be waited for) is long enough ago; otherwise
/// keeps `current` (holding the room if only time is missing).
fn move_up(
    track: &TrackDemand,
    current: AllocationDecision,
    lowest: u8,
    top: u8,
    budget: &Budget,
    last_switch: Option<Instant>,
    now: Instant,
) -> Choice {
    let target = (lowest..=top).rev().find(|&layer| budget.has_room(track.layer_cost(layer)));
    let Some(target) = target else {
        return Choice::settled(current);
    };
    let Some(allowed_at) = last_switch.map(|at| at + MIN_SWITCH_INTERVAL) else {
        return Choice::settled(Layer(target));
    };
    if now >= allowed_at {
        return Choice::settled(Layer(target));
    }
    Choice { reserve: track.layer_cost(target), held_until: Some(allowed_at), ..Choice::settled(current) }
}
