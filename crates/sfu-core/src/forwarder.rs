//! The forwarding decision for one (subscriber, published track) pair.
//!
//! For each packet of the track the caller asks [`Forwarder::on_packet`] what to do and gets a
//! [`Decision`]: drop it (with a reason), or send it with the rewritten sequence number,
//! timestamp, marker and VP8 picture numbering in the [`Translation`]. The forwarder never
//! touches the packet; the caller applies the translation, so the decision logic stays pure and
//! testable.
//!
//! Video rules: the subscriber receives one layer at a time (the *current* layer). The
//! [`LayerSelector`] names the *target* layer; the switch happens only at a keyframe of the
//! target, and the current layer keeps flowing until then, so the picture never freezes on a
//! switch. While a keyframe is needed, [`Forwarder::poll_keyframe_request`] names the layer to
//! request it for (the caller sends a PLI upstream, through the track's
//! [`KeyframeRequestThrottle`]).
//!
//! The subscriber's bandwidth allocator steers it with
//! [`Forwarder::set_bandwidth_allocation`]: a layer cap, or a pause for bandwidth (every packet
//! dropped as [`DropReason::PausedForBandwidth`]; on resume a keyframe is requested at once).

use std::time::{Duration, Instant};

use sfu_proto::{SubscriptionSettings, TrackKind};

use crate::allocator::{AllocationDecision, PauseReason};
use crate::drop_reason::DropReason;
use crate::keyframe::VideoCodec;
use crate::keyframe_throttle::KeyframeRequestThrottle;
use crate::layer_activity::LayerActivity;
use crate::munger::RtpMunger;
use crate::selector::{LayerSelector, LayerSet, MAX_LAYERS};
use crate::vp8::{Vp8Descriptor, Vp8Munger, Vp8Rewrite};

/// What the forwarder needs to know about one incoming RTP packet (already parsed and
/// decrypted by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Simulcast layer index, 0 = lowest (always 0 for audio and single-layer video).
    pub layer: u8,
    /// The publisher's SSRC for this layer; a change means the publisher restarted the stream.
    pub ssrc: u32,
    /// The publisher's RTP sequence number.
    pub seq: u16,
    /// The publisher's RTP timestamp.
    pub timestamp: u32,
    /// The RTP marker bit (last packet of a video frame).
    pub marker: bool,
    /// The packet starts a keyframe (see [`VideoCodec::is_keyframe`]).
    pub keyframe: bool,
    /// The payload is empty (padding only), e.g. the publisher's bandwidth probing.
    pub padding_only: bool,
    /// The VP8 descriptor's picture numbering (VP8 only; see [`crate::vp8`]).
    pub vp8: Option<Vp8Descriptor>,
}

/// What to do with one packet for one subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send it, rewritten as described.
    Forward(Translation),
    /// Do not send it.
    Drop(DropReason),
}

/// How long a subscriber with nothing forwarded yet waits for its target layer's keyframe
/// before it also asks for the lowest flowing layer's: a publisher answers a keyframe request in
/// well under this when the layer flows, and the first picture should come within a second of
/// connecting.
pub const START_FALLBACK_AFTER: Duration = Duration::from_millis(300);

/// How to rewrite a forwarded packet's RTP header for this subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output sequence number.
    pub seq: u16,
    /// Output timestamp.
    pub timestamp: u32,
    /// Output marker bit.
    pub marker: bool,
    /// Set on the first packet after the subscriber moved to this layer (or to a restarted
    /// stream of it): the caller can update stats and tell the client.
    pub switched_layer: Option<u8>,
    /// New VP8 picture numbering, to be written into the payload's descriptor.
    pub vp8: Option<Vp8Rewrite>,
}

/// The input stream currently forwarded: one layer, one publisher SSRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CurrentStream {
    layer: u8,
    ssrc: u32,
}

/// Forwarding state of one subscription to one published track.
#[derive(Clone, Debug)]
pub struct Forwarder {
    kind: TrackKind,
    codec: VideoCodec,
    selector: LayerSelector,
    /// The publisher muted the track.
    muted: bool,
    /// False while an audio track is not among the room's loudest (top-N audio).
    among_loudest: bool,
    /// Known resolutions, lowest layer first; grows when packets of unannounced layers arrive.
    layers: Vec<Option<(u16, u16)>>,
    /// The allocator's limit from the subscriber's estimated bandwidth.
    max_layer_by_bandwidth: Option<u8>,
    /// The allocator found no room for even the lowest layer: forward nothing.
    paused_for_bandwidth: bool,
    /// Layers below the top that the shard sheds while overloaded (see [`crate::overload`]).
    shed_levels: u8,
    activity: LayerActivity,
    /// Layers the publisher is known to send though their packets may never reach this
    /// forwarder (a track relayed from another node, which sends only the layers used here);
    /// `None`: activity alone tells.
    available: Option<LayerSet>,
    /// Active layers as of the last packet or poll (the target is computed from this).
    active: LayerSet,
    /// Until when `active` stays true without another look at `activity` (see
    /// [`LayerActivity::stable_until`]): most packets then cost no recomputation.
    active_until: Option<Instant>,
    target: Option<u8>,
    current: Option<CurrentStream>,
    /// The current layer's publisher stream restarted (new SSRC): its keyframe is needed even
    /// though the layer does not change.
    restart_pending: bool,
    /// SSRC replaced by a restart; its late packets must not switch back to it.
    retired_ssrc: Option<u32>,
    /// When the subscriber's connection came up; no keyframe request before (it would be
    /// wasted: the subscriber could not receive the keyframe yet).
    connected_at: Option<Instant>,
    /// This subscriber's own request pacing, per layer.
    requests: KeyframeRequestThrottle,
    munger: RtpMunger,
    vp8: Vp8Munger,
}

impl Forwarder {
    /// A forwarder for a track of `kind` and `codec` whose RTP clock runs at `clock_rate` Hz.
    /// It forwards nothing until it has a layer; for video it waits for a keyframe.
    pub fn new(kind: TrackKind, codec: VideoCodec, clock_rate: u32) -> Self {
        let mut forwarder = Self {
            kind,
            codec,
            selector: LayerSelector::default(),
            muted: false,
            among_loudest: true,
            layers: Vec::new(),
            max_layer_by_bandwidth: None,
            paused_for_bandwidth: false,
            shed_levels: 0,
            activity: LayerActivity::new(),
            available: None,
            active: LayerSet::ALL,
            active_until: None,
            target: None,
            current: None,
            restart_pending: false,
            retired_ssrc: None,
            connected_at: None,
            requests: KeyframeRequestThrottle::new(),
            munger: RtpMunger::new(clock_rate),
            vp8: Vp8Munger::default(),
        };
        forwarder.update_target();
        forwarder
    }

    /// Applies the subscriber's wishes (layer preference, viewport size, paused).
    pub fn set_preference(&mut self, settings: &SubscriptionSettings) {
        self.selector = LayerSelector::from_settings(settings);
        self.on_pause_change();
    }

    /// The publisher muted or unmuted the track.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
        self.on_pause_change();
    }

    /// Top-N audio: whether this audio track is among the room's loudest, whose packets are
    /// forwarded. Held back, it drops packets as [`DropReason::NotLoudest`]; let through again,
    /// it continues the subscriber's sequence numbers with no gap.
    pub fn set_among_loudest(&mut self, among: bool) {
        self.among_loudest = among;
        if !among {
            self.current = None;
            self.restart_pending = false;
        }
    }

    /// The track's layers as known so far: resolutions ordered lowest to highest, `None` where
    /// not known yet. Layers beyond [`MAX_LAYERS`] are ignored.
    pub fn set_layers(&mut self, layers: &[Option<(u16, u16)>]) {
        self.layers.clear();
        self.layers.extend(layers.iter().take(MAX_LAYERS));
        let seen = self.activity.seen_count();
        if self.layers.len() < seen {
            self.layers.resize(seen, None);
        }
        self.update_target();
    }

    /// The bandwidth allocator's cap on the layer index (`None`: no cap).
    pub fn set_max_layer_by_bandwidth(&mut self, max_layer: Option<u8>) {
        self.max_layer_by_bandwidth = max_layer;
        self.update_target();
    }

    /// Caps the video `levels` layers below the track's top layer (0: no cap), because the shard
    /// is overloaded. Never below the lowest layer.
    pub fn set_shed_levels(&mut self, levels: u8) {
        self.shed_levels = levels;
        self.update_target();
    }

    /// Pauses (or resumes) the track because the subscriber's bandwidth cannot carry it.
    /// While paused, packets are dropped as [`DropReason::PausedForBandwidth`] and no keyframe
    /// is requested; on resume the current stream starts over at a keyframe, requested at once.
    pub fn set_paused_for_bandwidth(&mut self, paused: bool) {
        self.paused_for_bandwidth = paused;
        self.on_pause_change();
    }

    /// Applies the allocator's decision for this track: a layer caps the layer
    /// ([`set_max_layer_by_bandwidth`](Self::set_max_layer_by_bandwidth)) and resumes a track
    /// paused for bandwidth; [`PauseReason::Bandwidth`] pauses it. `Audio` and
    /// [`PauseReason::Subscriber`] (applied through
    /// [`set_preference`](Self::set_preference)) only lift a bandwidth pause.
    pub fn set_bandwidth_allocation(&mut self, decision: AllocationDecision) {
        if let AllocationDecision::Layer(layer) = decision {
            self.max_layer_by_bandwidth = Some(layer);
        }
        self.set_paused_for_bandwidth(decision == AllocationDecision::Paused(PauseReason::Bandwidth));
    }

    /// The subscriber's connection is up: keyframe requests may go out from now on.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected_at.get_or_insert(now);
    }

    /// Decides what to do with a packet of this track.
    pub fn on_packet(&mut self, pkt: &PacketMeta, now: Instant) -> Decision {
        if self.kind == TrackKind::Video {
            // Padding says nothing about a layer being encoded: a browser whose encoder dropped
            // its top layer keeps sending probe padding on that layer's SSRC.
            // A packet can only make its own layer active.
            let mut stale = self.active_is_stale(now);
            if !pkt.padding_only {
                self.activity.on_packet(pkt.layer, now);
                stale |= !self.active.contains(pkt.layer);
            }
            if usize::from(pkt.layer) < MAX_LAYERS && self.layers.len() <= usize::from(pkt.layer) {
                self.layers.resize(usize::from(pkt.layer) + 1, None);
                stale = true;
            }
            if stale {
                self.refresh_target(now);
            }
        }
        if self.is_paused() {
            return Decision::Drop(DropReason::Paused);
        }
        if self.paused_for_bandwidth {
            return Decision::Drop(DropReason::PausedForBandwidth);
        }
        if !self.among_loudest {
            return Decision::Drop(DropReason::NotLoudest);
        }
        if self.retired_ssrc == Some(pkt.ssrc) {
            return Decision::Drop(DropReason::OutOfOrderTooOld);
        }
        match self.kind {
            TrackKind::Audio => self.on_audio_packet(pkt, now),
            TrackKind::Video => self.on_video_packet(pkt, now),
        }
    }

    /// The layer to request a keyframe for now, if one is needed, the connection is up, and
    /// this subscriber has not asked for that layer within the throttle interval. The caller
    /// should also pass it through the track's shared [`KeyframeRequestThrottle`].
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<u8> {
        if self.kind == TrackKind::Video && self.active_is_stale(now) {
            self.refresh_target(now);
        }
        let connected_at = self.connected_at?;
        let target = self.wanted_keyframe()?;
        if self.requests.should_send(target, now) {
            return Some(target);
        }
        // Still nothing forwarded well after the connection came up: ask for the lowest flowing
        // layer's keyframe too, and start on whichever comes first (see `on_video_packet`).
        if self.current.is_none()
            && now.saturating_duration_since(connected_at) >= START_FALLBACK_AFTER
            && let Some(lowest) = (0..target).find(|l| self.active.contains(*l))
            && self.requests.should_send(lowest, now)
        {
            return Some(lowest);
        }
        None
    }

    /// When [`poll_keyframe_request`](Self::poll_keyframe_request) may next return a layer, if
    /// a keyframe is wanted (a time in the past means now).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connected_at = self.connected_at?;
        let layer = self.wanted_keyframe()?;
        Some(self.requests.next_allowed(layer).map_or(connected_at, |at| at.max(connected_at)))
    }

    /// The layer being forwarded, if any.
    pub fn current_layer(&self) -> Option<u8> {
        self.current.map(|current| current.layer)
    }

    /// The layer the forwarder is moving to (equal to the current one when settled); `None`
    /// when paused, muted, or no layer is available.
    pub fn target_layer(&self) -> Option<u8> {
        self.target
    }

    /// Whether the subscriber paused the track or the publisher muted it.
    pub fn is_paused(&self) -> bool {
        self.selector.paused || self.muted
    }

    /// The layer the subscriber's own wishes allow, before any bandwidth limit; None when the
    /// subscriber paused the track or the publisher muted it. This is what the allocator is
    /// asked to afford.
    pub fn preferred_layer(&self) -> Option<u8> {
        match self.kind {
            _ if self.is_paused() => None,
            TrackKind::Audio => Some(0),
            TrackKind::Video => self.selector.target(&self.layers, self.active, None),
        }
    }

    /// The layer the subscriber asks for, whatever is flowing and whatever its bandwidth allows
    /// (audio: 0); `None` when it paused the track. What dynacast asks the publisher to encode.
    pub fn requested_layer(&self) -> Option<u8> {
        match self.kind {
            TrackKind::Video if !self.layers.is_empty() => self.selector.preferred(&self.layers),
            _ => (!self.selector.paused).then_some(0),
        }
    }

    /// Tells a new forwarder which layers are flowing right now (the caller has watched the track
    /// for longer), so it targets a live layer at once instead of learning that a layer is
    /// silent over its first second and a half.
    pub fn seed_active_layers(&mut self, layers: &[u8], now: Instant) {
        if self.kind == TrackKind::Video {
            self.activity.seed(layers, now);
            self.refresh_target(now);
        }
    }

    /// Which layers the publisher sends, as told by whoever sees all of them (the publisher's
    /// node, for a relayed track): a layer in `layers` counts as active whether or not its
    /// packets arrive here, so the subscriber can ask for it; one whose packets arrive counts
    /// too. `None` goes back to judging by the packets alone.
    pub fn set_available_layers(&mut self, layers: Option<LayerSet>, now: Instant) {
        self.available = layers;
        if self.kind == TrackKind::Video {
            self.refresh_target(now);
        }
    }

    /// Whether the allocator paused the track for lack of bandwidth.
    pub fn is_paused_for_bandwidth(&self) -> bool {
        self.paused_for_bandwidth
    }

    /// How many layers the track is known to have (announced or seen).
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// The track's kind.
    pub fn kind(&self) -> TrackKind {
        self.kind
    }

    /// The track's codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    fn on_audio_packet(&mut self, pkt: &PacketMeta, now: Instant) -> Decision {
        let stream = CurrentStream { layer: 0, ssrc: pkt.ssrc };
        if self.current == Some(stream) {
            return self.translate(pkt, now, None);
        }
        self.start_stream(stream, pkt, now);
        self.translate(pkt, now, Some(0))
    }

    fn on_video_packet(&mut self, pkt: &PacketMeta, now: Instant) -> Decision {
        let Some(target) = self.target else {
            return Decision::Drop(DropReason::NoLayerAvailable);
        };
        let stream = CurrentStream { layer: pkt.layer, ssrc: pkt.ssrc };
        let on_current = self.current == Some(stream);
        if pkt.padding_only {
            if on_current {
                self.munger.skip(pkt.seq);
            }
            return Decision::Drop(DropReason::Padding);
        }
        if on_current {
            return self.translate(pkt, now, None);
        }
        if pkt.layer == target && pkt.keyframe {
            self.start_stream(stream, pkt, now);
            return self.translate(pkt, now, Some(target));
        }
        if self.current.is_none() && pkt.keyframe && pkt.layer < target && self.active.contains(pkt.layer) {
            // Nothing forwarded yet: a flowing layer below the target gives the subscriber a
            // picture now, and the target's keyframe moves it up when it comes (a publisher
            // may have just stopped encoding the target without the activity showing it yet).
            self.start_stream(stream, pkt, now);
            return self.translate(pkt, now, Some(pkt.layer));
        }
        if self.current_layer() == Some(pkt.layer) {
            // Same layer, new SSRC, not a keyframe: the publisher restarted this layer.
            self.restart_pending = true;
            return Decision::Drop(DropReason::AwaitingKeyframe);
        }
        if pkt.layer == target {
            return Decision::Drop(DropReason::AwaitingKeyframe);
        }
        Decision::Drop(DropReason::NotTargetLayer)
    }

    /// Makes `stream` the current one, continuing the output after the previous stream.
    fn start_stream(&mut self, stream: CurrentStream, pkt: &PacketMeta, now: Instant) {
        if let Some(previous) = self.current
            && previous.layer == stream.layer
            && previous.ssrc != stream.ssrc
        {
            self.retired_ssrc = Some(previous.ssrc);
        }
        self.current = Some(stream);
        self.restart_pending = false;
        self.munger.switch_to(pkt.seq, pkt.timestamp, now);
        if let Some(descriptor) = &pkt.vp8 {
            self.vp8.switch_to(descriptor);
        }
    }

    fn translate(&mut self, pkt: &PacketMeta, now: Instant, switched_layer: Option<u8>) -> Decision {
        match self.munger.forward(pkt.seq, pkt.timestamp, now) {
            Ok((seq, timestamp)) => Decision::Forward(Translation {
                seq,
                timestamp,
                marker: pkt.marker,
                switched_layer,
                vp8: pkt.vp8.as_ref().map(|descriptor| self.vp8.rewrite(descriptor)),
            }),
            Err(reason) => Decision::Drop(reason),
        }
    }

    /// The layer whose keyframe is needed before forwarding can (re)start or switch.
    fn wanted_keyframe(&self) -> Option<u8> {
        if self.kind == TrackKind::Audio {
            return None;
        }
        let target = self.target?;
        match self.current {
            Some(current) if current.layer == target && !self.restart_pending => None,
            _ => Some(target),
        }
    }

    /// A pause (of any kind) ends the current stream: after it the subscriber's decoder needs a
    /// keyframe, and the output continues after a time gap.
    fn on_pause_change(&mut self) {
        if self.is_paused() || self.paused_for_bandwidth {
            self.current = None;
            self.restart_pending = false;
        }
        self.update_target();
    }

    fn active_is_stale(&self, now: Instant) -> bool {
        self.active_until.is_none_or(|until| now > until)
    }

    fn refresh_target(&mut self, now: Instant) {
        self.active = match self.available {
            // Packets still count: a layer may start flowing before the next word of it.
            Some(available) => self.activity.recently_seen(now).into_iter().fold(available, LayerSet::with),
            None => self.activity.active(now),
        };
        self.active_until = self.activity.stable_until(now);
        self.update_target();
    }

    fn update_target(&mut self) {
        self.target = match self.kind {
            _ if self.muted || self.paused_for_bandwidth => None,
            TrackKind::Audio => (!self.selector.paused).then_some(0),
            TrackKind::Video => {
                let top = u8::try_from(self.layers.len().saturating_sub(1)).unwrap_or(u8::MAX);
                let shed = (self.shed_levels > 0).then(|| top.saturating_sub(self.shed_levels));
                let cap = [self.max_layer_by_bandwidth, shed].into_iter().flatten().min();
                self.selector.target(&self.layers, self.active, cap)
            }
        };
    }
}

#[cfg(test)]
mod tests;
