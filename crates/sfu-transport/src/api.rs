//! What the control plane and the media plane say to each other: the media plane's events,
//! and the values its requests take and return. Both sides depend on this module; it depends on
//! neither.

use bytes::Bytes;
use sfu_core::{LayerSet, PauseReason};
use sfu_proto::{LayerInfo, ParticipantId, Rid, SubscriptionSettings, TrackId, TrackKind, TrackSource};

use crate::{ConnId, TrackKey};

/// What the media plane tells the control plane, unprompted.
#[derive(Debug)]
pub enum MediaEvent {
    /// ICE and DTLS are up on this connection.
    Connected { conn: ConnId },
    /// The connection failed or closed on the network side.
    Disconnected { conn: ConnId },
    /// A message arrived on a publisher connection's data channel.
    Data { conn: ConnId, text: bool, payload: Bytes },
    /// The bandwidth allocator paused a track this subscriber connection receives (`paused`
    /// says why), or resumed it (`None`).
    StreamState { conn: ConnId, key: TrackKey, paused: Option<PauseReason> },
    /// Dynacast: the publisher on `conn` should encode exactly the simulcast layers marked
    /// active (by rid) of this track.
    EncodeLayers { conn: ConnId, key: TrackKey, layers: Vec<(Rid, bool)> },
    /// Smoothed loudness (0 = silent .. 1 = full scale) of audio published on these
    /// connections, every [`sfu_core::SPEAKER_REPORT_INTERVAL`] while any is audible.
    AudioLevels { levels: Vec<(ConnId, f32)> },
    /// On the node receiving relay track `key`: what its subscribers here now use (the layers
    /// their forwarders are on or moving to) and the highest layer they ask for, when either
    /// changed. For the publisher's node: `MediaPlane::set_relay_layers` on the track the relay
    /// track came from. Empty and `None` once nobody here wants it.
    RelayDemand { key: TrackKey, used: LayerSet, wanted: Option<u8> },
    /// On the publisher's node: the layers of `key` (a track that crosses links) its publisher
    /// sends now, when that changed (checked every 500 ms). For the nodes receiving it:
    /// `MediaPlane::relay_layers_active` on their relay tracks.
    LayersActive { key: TrackKey, layers: LayerSet },
}

/// A track that a publisher's offer added, ready to announce to the room.
#[derive(Clone, Debug)]
pub struct PublishedTrack {
    pub mid: String,
    pub key: TrackKey,
    pub kind: TrackKind,
    pub mime: String,
    pub clock_rate: u32,
    /// Simulcast layers ordered lowest to highest; empty for single-layer tracks.
    pub layers: Vec<LayerInfo>,
}

#[derive(Debug)]
pub struct PublisherAnswer {
    pub sdp: String,
    pub added: Vec<PublishedTrack>,
    /// Tracks whose media section the client stopped or removed.
    pub removed: Vec<TrackKey>,
}

/// Everything a subscriber's shard needs to forward one published track.
#[derive(Clone, Debug)]
pub struct DownTrackSpec {
    pub key: TrackKey,
    pub track_id: TrackId,
    pub publisher: ParticipantId,
    pub kind: TrackKind,
    pub mime: String,
    pub clock_rate: u32,
    pub layers: Vec<LayerInfo>,
    pub settings: SubscriptionSettings,
    pub muted: bool,
    /// Top-N audio: whether the track is among its room's loudest, whose audio is forwarded
    /// (always true for video).
    pub among_loudest: bool,
    /// Camera, screen share, ...: screen shares come first when bandwidth is short.
    pub source: TrackSource,
}

#[derive(Debug)]
pub struct SubscriberOffer {
    pub sdp: String,
    /// The mid of each media section that carries a track.
    pub tracks: Vec<(String, TrackKey)>,
}
