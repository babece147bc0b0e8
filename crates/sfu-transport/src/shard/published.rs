//! What a shard knows of the tracks its connections publish, and the packets they send.

use bytes::Bytes;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use sfu_core::{KeyframeRequestThrottle, LayerActivity, LayerOrder, LayerSet, PacketMeta, VideoCodec};
use sfu_proto::{LayerInfo, ParticipantId, TrackKind};
use std::collections::HashMap;
use std::time::Instant;

use super::relay::inbound::RelayIn;
use super::relay::out::RelayOut;
use super::uplink::TrackUplink;
use crate::relay::LinkId;
use crate::{ConnId, TrackKey};

/// One published packet, decrypted once and shared by every subscriber's forwarder.
#[derive(Debug)]
pub(crate) struct MediaPacket {
    pub key: TrackKey,
    /// Everything a forwarder decides on.
    pub meta: PacketMeta,
    pub payload: Bytes,
    /// When its datagram was read from the socket: the start of the forwarding delay.
    pub arrived: Instant,
    /// A room mix's frame only: the payloads of the speakers who must not hear themselves,
    /// sent to them instead of `payload` (empty for every other packet).
    pub mix_minus: Vec<(ParticipantId, Bytes)>,
}

impl MediaPacket {
    /// What `listener` is sent: its mix-minus payload if this frame has one, else `payload`.
    pub fn payload_for(&self, listener: Option<&ParticipantId>) -> &Bytes {
        match listener {
            Some(who) if !self.mix_minus.is_empty() => {
                self.mix_minus.iter().find(|(speaker, _)| speaker == who).map_or(&self.payload, |(_, p)| p)
            }
            _ => &self.payload,
        }
    }
}

/// Where a published track's packets come from.
pub(crate) enum Source {
    /// A client's connection on this shard, in media section `mid` (its receiver is looked up
    /// through it because a renegotiation, e.g. an ICE restart, may give the section a new
    /// receiver).
    Conn { conn: ConnId, mid: String },
    /// A link from the node where it is published.
    Relay(RelayIn),
    /// A room's audio mix, made on this shard (`shard/mix.rs`).
    Mixer,
}

/// Whose subscribers a published track's dynacast demand comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DemandFrom {
    /// A shard of this node.
    Shard(usize),
    /// The node at the other end of a link the track crosses.
    Link(LinkId),
}

impl Source {
    /// The publishing connection, for a track a client publishes here.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Source::Conn { conn, .. } => Some(*conn),
            Source::Relay(_) | Source::Mixer => None,
        }
    }

    /// The link, for a track that arrives over one.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn link(&self) -> Option<LinkId> {
        match self {
            Source::Relay(relay) => Some(relay.link),
            Source::Conn { .. } | Source::Mixer => None,
        }
    }
}

/// A track published on this shard: by a connection here, or arriving over a link.
pub(crate) struct Published {
    pub source: Source,
    pub kind: TrackKind,
    pub codec: VideoCodec,
    pub layers: LayerOrder,
    /// The SSRC seen on each layer, for addressing PLIs.
    pub layer_ssrcs: HashMap<u8, u32>,
    /// Shards with subscribers, with how many subscriptions each holds.
    pub downstream: HashMap<usize, usize>,
    pub throttle: KeyframeRequestThrottle,
    /// Layers whose keyframe request fell inside the throttle window: sent when it ends, so a
    /// subscriber arriving just after another one waits at most one window.
    pub deferred_plis: Vec<u8>,
    /// Dynacast (simulcast tracks, when enabled): the highest layer wanted by each shard's
    /// subscribers and each link's far side, and what the publisher is told to encode.
    pub demand: HashMap<DemandFrom, u8>,
    pub dynacast: Option<sfu_core::Dynacast>,
    /// Which layers the publisher is sending, told to a shard that starts subscribing.
    pub activity: LayerActivity,
    /// Audio tracks whose publisher sends the audio-level extension: its id and the meter.
    pub audio_level: Option<AudioLevelTap>,
    /// What arrived and what is missing on each incoming stream, to NACK (a publisher's video;
    /// every relay track).
    pub uplink: Option<TrackUplink>,
    /// The links this track crosses (a remote node is one subscriber per track).
    pub relay_outs: Vec<RelayOut>,
    /// The layers last said to flow (`LayersActive`), for a track that crosses links.
    pub layers_told: Option<LayerSet>,
}

impl Published {
    /// A track nobody subscribes to yet, with no packet seen.
    pub fn new(source: Source, kind: TrackKind, mime: &str, layers: LayerOrder) -> Self {
        Self {
            source,
            kind,
            codec: VideoCodec::from_mime(mime),
            layers,
            layer_ssrcs: HashMap::new(),
            downstream: HashMap::new(),
            throttle: KeyframeRequestThrottle::new(),
            deferred_plis: Vec::new(),
            demand: HashMap::new(),
            dynacast: None,
            activity: LayerActivity::new(),
            audio_level: None,
            uplink: None,
            relay_outs: Vec::new(),
            layers_told: None,
        }
    }

    /// The publishing connection, for a track a client publishes here.
    pub fn conn(&self) -> Option<ConnId> {
        self.source.conn()
    }
}

/// Reads a published audio track's loudness from its audio-level header extension.
pub(crate) struct AudioLevelTap {
    pub extension_id: u8,
    pub meter: sfu_core::AudioLevelMeter,
    /// The last report said this track was not silent (so its fall to silence is reported too).
    pub audible: bool,
}

/// The layers of a track, lowest first, with what is known of their sizes.
pub(crate) fn ordered_layers(order: &LayerOrder) -> Vec<LayerInfo> {
    order
        .resolutions()
        .into_iter()
        .enumerate()
        .filter_map(|(i, dims)| {
            let rid = order.rid_at(i as u8)?;
            let (width, height) = dims.map_or((0, 0), |(w, h)| (u32::from(w), u32::from(h)));
            Some(LayerInfo { rid: sfu_proto::Rid(rid.to_owned()), width, height })
        })
        .collect()
}

/// The receiver currently attached to media section `mid`.
pub(crate) fn receiver_of(pc: &mut RTCPeerConnection, mid: &str) -> Option<RTCRtpReceiverId> {
    let transceivers: Vec<_> = pc.get_transceivers().collect();
    transceivers.into_iter().find_map(|t| {
        let transceiver = pc.rtp_transceiver(t)?;
        if transceiver.mid().as_deref() == Some(mid) { transceiver.receiver() } else { None }
    })
}
