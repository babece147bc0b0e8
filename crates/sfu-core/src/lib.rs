//! Sans-IO media router: the decisions an SFU makes about each RTP packet, with no I/O.
//!
//! This crate owns no sockets, no tasks and no clock. Every call that depends on time takes
//! `now: Instant` from the caller, so the same inputs always give the same decisions, and tests
//! run in virtual time at any speed.
//!
//! # Driving contract
//!
//! The transport (which owns sockets, SRTP and timers) drives one [`Forwarder`] per
//! (subscriber, published track):
//!
//! 1. Tell it what it needs to know as it changes: [`Forwarder::set_preference`] (the
//!    subscriber's wishes), [`Forwarder::set_muted`], [`Forwarder::set_layers`] (resolutions
//!    from a [`LayerOrder`]), [`Forwarder::set_max_layer_by_bandwidth`], and
//!    [`Forwarder::on_connected`] once the subscriber's connection is up.
//! 2. For each decrypted publisher packet, build a [`PacketMeta`] (layer from
//!    [`LayerOrder::index_of`], keyframe flag from [`VideoCodec::is_keyframe`]) and call
//!    [`Forwarder::on_packet`]. It returns a [`Decision`]: drop (with a [`DropReason`] to count)
//!    or forward with a [`Translation`]; the caller rewrites the header (sequence number,
//!    timestamp, marker), stores the packet in the subscriber's [`RtpHistory`] under the output
//!    sequence number, and sends it. The payload itself can be kept once per track, in a
//!    [`PacketRing`], with only its index in each subscriber's history.
//! 3. After packets and whenever [`Forwarder::poll_timeout`] passes, call
//!    [`Forwarder::poll_keyframe_request`]. A returned layer is passed through the published
//!    track's shared [`KeyframeRequestThrottle`]; if that allows it, send a PLI for that layer.
//!
//! One [`Allocator`] per subscriber shares its estimated bandwidth among its tracks:
//!
//! 4. Keep one [`LayerRates`] per published track and feed it every packet
//!    ([`LayerRates::on_packet`]); it prices each layer.
//! 5. Whenever the subscriber's estimate, its wishes or the measured rates change, and when
//!    [`Allocator::poll_timeout`] passes, build one [`TrackDemand`] per subscribed track and call
//!    [`Allocator::allocate`]. Apply each [`AllocationDecision`] with
//!    [`Forwarder::set_bandwidth_allocation`], tell the client about pauses
//!    ([`PauseReason`]), and pass [`Allocations::desired_bps`] and
//!    [`Allocations::blocked_up_switch`] to the bandwidth estimator (desired rate, probe).
//!
//! One [`Dynacast`] per published simulcast track decides which layers its publisher encodes:
//!
//! 6. Give it the highest layer any subscriber wants ([`Forwarder::requested_layer`], the
//!    maximum over all subscribers) whenever that changes, and call
//!    [`Dynacast::handle_timeout`] when [`Dynacast::poll_timeout`] passes; tell the publisher
//!    each [`EncodeLayers`] it returns.
//!
//! Active speakers come from the audio-level header extension:
//!
//! 7. Keep one [`AudioLevelMeter`] per published audio track, feed it each packet's level
//!    ([`parse_audio_level`]) and take its smoothed loudness every [`SPEAKER_REPORT_INTERVAL`].
//!    One [`ActiveSpeakers`] per room ranks the participants; announce each ranking that
//!    [`ActiveSpeakers::poll_change`] returns, and mark speakers' video in [`TrackDemand`].
//!
//! Losses on a publisher's uplink are asked for again:
//!
//! 8. Keep one [`UplinkNacks`] per incoming video stream (per simulcast SSRC) and feed it every
//!    packet's sequence number, retransmissions included (after RTX is unwrapped); forward
//!    only what it calls [`Arrival::New`] or [`Arrival::Repaired`]. When
//!    [`UplinkNacks::poll_timeout`] passes, send a NACK for what [`UplinkNacks::poll_nacks`]
//!    returns.
//!
//! The router decides; the caller applies. Nothing here blocks, allocates per packet on the
//! common path, or panics on packet data.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod allocator;
pub mod audio_level;
pub mod data_rate;
pub mod drop_reason;
pub mod dynacast;
pub mod forwarder;
pub mod history;
pub mod keyframe;
pub mod keyframe_throttle;
pub mod layer_activity;
pub mod layer_rates;
pub mod layers;
pub mod loudest;
pub mod mixer;
pub mod munger;
pub mod overload;
pub mod packet_ring;
pub mod selector;
pub mod seq;
pub mod speakers;
#[cfg(test)]
mod test_rng;
pub mod uplink_nacks;
pub mod vp8;

pub use allocator::{
    Allocation, AllocationDecision, Allocations, Allocator, BlockedUpSwitch, DEFAULT_AUDIO_BITRATE,
    DEFAULT_LAYER_BITRATES, MIN_SWITCH_INTERVAL, PauseReason, TrackDemand, UP_SWITCH_MARGIN_PERCENT,
    default_layer_bitrate,
};
pub use audio_level::{AudioLevelMeter, SPEAKER_REPORT_INTERVAL, VOICE_DBOV, parse_audio_level};
pub use data_rate::DataRateLimiter;
pub use drop_reason::DropReason;
pub use dynacast::{DYNACAST_PAUSE_DELAY, Dynacast, EncodeLayers};
pub use forwarder::{Decision, Forwarder, PacketMeta, Translation};
pub use history::{ResendGuard, ResendLog, RtpHistory};
pub use keyframe::{VideoCodec, is_h264_keyframe, is_vp8_keyframe, vp8_keyframe_size};
pub use keyframe_throttle::{KEYFRAME_REQUEST_INTERVAL, KeyframeRequestThrottle};
pub use layer_activity::{LAYER_INACTIVE_AFTER, LayerActivity};
pub use layer_rates::{LAYER_RATE_BUCKET, LAYER_RATE_BUCKETS, LAYER_RATE_MIN_SPAN, LayerRates};
pub use layers::{LayerOrder, OrderBasis};
pub use loudest::{LoudestSpeakers, SelectionChange};
pub use mixer::{AudioMixer, Mixed};
pub use munger::RtpMunger;
pub use overload::{MAX_SHED_LEVEL, OverloadGuard};
pub use packet_ring::PacketRing;
pub use selector::{LayerSelector, LayerSet, MAX_LAYERS};
pub use seq::{SeqUnwrapper, TsUnwrapper};
pub use speakers::{ActiveSpeakers, DOMINANCE_MARGIN, SILENT_LEVEL, SPEAKING_LEVEL};
pub use uplink_nacks::{
    Arrival, MAX_NACK_AGE, MAX_NACKS_PER_PACKET, NACK_RETRY_INTERVAL, SRTP_REPLAY_WINDOW, UplinkNacks,
};
pub use vp8::{PictureId, Vp8Descriptor, Vp8Munger, Vp8Rewrite, parse_vp8_descriptor};
