//! What a shard knows of the tracks its connections publish, and the packets they send.

use bytes::Bytes;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use sfu_core::{KeyframeRequestThrottle, LayerActivity, LayerOrder, PacketMeta, VideoCodec};
use sfu_proto::LayerInfo;
use std::collections::HashMap;
use std::time::Instant;

use super::uplink::TrackUplink;
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
}

/// A track published by a connection on this shard.
pub(crate) struct Published {
    pub conn: ConnId,
    pub codec: VideoCodec,
    pub layers: LayerOrder,
    /// The SSRC seen on each layer, for addressing PLIs.
    pub layer_ssrcs: HashMap<u8, u32>,
    /// The media section carrying the track; its receiver is looked up through it because a
    /// renegotiation (e.g. an ICE restart) may give the section a new receiver.
    pub mid: String,
    /// Shards with subscribers, with how many subscriptions each holds.
    pub downstream: HashMap<usize, usize>,
    pub throttle: KeyframeRequestThrottle,
    /// Layers whose keyframe request fell inside the throttle window: sent when it ends, so a
    /// subscriber arriving just after another one waits at most one window.
    pub deferred_plis: Vec<u8>,
    /// Dynacast (simulcast tracks, when enabled): the highest layer wanted by each shard's
    /// subscribers, and what the publisher is told to encode.
    pub demand: HashMap<usize, u8>,
    pub dynacast: Option<sfu_core::Dynacast>,
    /// Which layers the publisher is sending, told to a shard that starts subscribing.
    pub activity: LayerActivity,
    /// Audio tracks whose publisher sends the audio-level extension: its id and the meter.
    pub audio_level: Option<AudioLevelTap>,
    /// Video tracks: what arrived and what is missing on each incoming stream, to NACK.
    pub uplink: Option<TrackUplink>,
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
