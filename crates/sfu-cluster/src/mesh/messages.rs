//! What nodes tell each other about rooms on the control connection (docs/cluster.md, "What
//! crosses"). Each node is the only authority on its local participants; these are its snapshots
//! and deltas, in order, per peer.
//!
//! Encoded as JSON (serde_json), tagged by `"type"`. A compact binary format would halve the
//! bytes, but these are human-rate events (joins, tracks, mutes) plus `Levels` five times a
//! second; what matters more is that a newer peer's message is told apart from a broken one
//! (an unknown `"type"` is skipped, the link kept), that fields can be added with
//! `#[serde(default)]`, and that a frame can be read in a capture. No binary serde format is in
//! the lock file as a dependency of the server either.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sfu_proto::{LeaveReason, ParticipantId, ParticipantInfo, RoomId, TrackId, TrackInfo};

use super::wire::b64_bytes;
use crate::membership::RoomSid;

/// A participant held by the sending node, as the receiving node keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteParticipant {
    /// Id, identity and tracks, as in `participant_joined`.
    pub info: ParticipantInfo,
    /// When it joined, in ms since the Unix epoch on the cluster's clock (the node's clock
    /// corrected by its offset to Redis's `TIME`): the older of two participants with one
    /// identity on two nodes is replaced.
    pub joined_at_ms: u64,
    /// The codec of each of its tracks (what a relay of the track needs beside `info`).
    #[serde(default)]
    pub media: Vec<TrackCodec>,
}

/// A published track's codec, as its publisher's node negotiated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackCodec {
    /// The track.
    pub track: TrackId,
    /// E.g. `video/VP8`.
    pub mime: String,
    /// Its RTP clock rate.
    pub clock_rate: u32,
}

/// One message between two nodes. More variants will come (the media link's `Subscribe`,
/// `Unsubscribe`, `LinkLayers`, `LayersActive`); a node that receives a `"type"` it does not know
/// skips that frame and keeps the link, so a newer node can talk to an older one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PeerMessage {
    /// A snapshot of the sender's local participants in a room and their tracks: sent when the
    /// sender joins the room, or when a link comes up for each room both hold.
    RoomHello {
        /// The room.
        room: RoomId,
        /// The room record's sid as the sender knows it.
        #[serde(with = "sid_text")]
        sid: RoomSid,
        /// The sender's local participants.
        participants: Vec<RemoteParticipant>,
        /// True for the answer to a `RoomHello` (which is answered once, and never an answer).
        reply: bool,
    },
    /// A local participant joined the room on the sender.
    ParticipantJoined {
        /// The room.
        room: RoomId,
        /// Who.
        participant: RemoteParticipant,
    },
    /// A local participant left the room on the sender.
    ParticipantLeft {
        /// The room.
        room: RoomId,
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A local participant published a track.
    TrackPublished {
        /// The room.
        room: RoomId,
        /// The publisher.
        participant: ParticipantId,
        /// The track as the room sees it.
        info: TrackInfo,
        /// Its codec, e.g. `video/VP8`.
        mime: String,
        /// Its RTP clock rate.
        clock_rate: u32,
    },
    /// A local participant's track is gone.
    TrackUnpublished {
        /// The room.
        room: RoomId,
        /// The publisher.
        participant: ParticipantId,
        /// The track.
        track: TrackId,
    },
    /// A local participant muted or unmuted a track.
    TrackMuted {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
        /// Its new state.
        muted: bool,
    },
    /// A data-channel message of a local participant, checked and rate-limited on the sender,
    /// for the receiver's local participants of the room.
    Data {
        /// The room.
        room: RoomId,
        /// The sending participant.
        from: ParticipantId,
        /// Whether it was a text message (else binary).
        text: bool,
        /// Its bytes, base64 on the wire.
        #[serde(with = "b64_bytes")]
        payload: Bytes,
    },
    /// Audio levels of the sender's audible local publishers (every 200 ms while any is
    /// audible, and once at each fall to silence).
    Levels {
        /// The room.
        room: RoomId,
        /// Publisher and level (0 silent .. 127 loudest).
        levels: Vec<(ParticipantId, u8)>,
    },
    /// The sender holds nobody in the room any more.
    RoomBye {
        /// The room.
        room: RoomId,
    },
    /// From a node that has subscribers of a track published on the receiver: send the track's
    /// layers to `dest` as `ssrcs` (one per layer, lowest first) over the link.
    Subscribe {
        /// The room.
        room: RoomId,
        /// The track, published on the receiver.
        track: TrackId,
        /// The sender's shard that receives it.
        dest: std::net::SocketAddr,
        /// The SSRC of each layer on the link.
        ssrcs: Vec<u32>,
    },
    /// The sender no longer wants the track.
    Unsubscribe {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
    },
    /// Which layers of a track the sender's subscribers use (only these cross the link) and the
    /// highest any of them wants (it joins the publisher's dynacast).
    LinkLayers {
        /// The room.
        room: RoomId,
        /// The track, published on the receiver.
        track: TrackId,
        /// Layer indices, 0 = lowest.
        used: Vec<u8>,
        /// The highest layer wanted; none: the track is wanted at no layer.
        wanted: Option<u8>,
    },
    /// The layers a track's publisher sends now (a layer that does not cross still exists).
    LayersActive {
        /// The room.
        room: RoomId,
        /// The track, published on the sender.
        track: TrackId,
        /// Layer indices, 0 = lowest.
        layers: Vec<u8>,
    },
    /// The link's own liveness probe, answered by `Pong`; never handed to the application.
    Ping {
        /// Names the probe.
        id: u64,
        /// When the prober sent it, in µs on its own link clock (echoed, never compared across
        /// nodes).
        sent_us: u64,
    },
    /// The answer to `Ping`, echoing it.
    Pong {
        /// The probe's id.
        id: u64,
        /// The probe's `sent_us`.
        sent_us: u64,
    },
}

/// Every `"type"` this build knows. A decode failure with another type is a newer peer.
const KNOWN_TYPES: &[&str] = &[
    "room_hello",
    "participant_joined",
    "participant_left",
    "track_published",
    "track_unpublished",
    "track_muted",
    "data",
    "levels",
    "room_bye",
    "subscribe",
    "unsubscribe",
    "link_layers",
    "layers_active",
    "ping",
    "pong",
];

/// A frame that opened but holds no message this build can read. The frame is skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A message type this build does not know: sent by a newer node.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A known type (or no type) with fields that do not fit.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl PeerMessage {
    /// The message as a frame's plaintext.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("peer messages always serialize")
    }

    /// Reads a frame's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|error| {
            #[derive(Deserialize)]
            struct TypeOnly {
                #[serde(rename = "type")]
                kind: String,
            }
            match serde_json::from_slice::<TypeOnly>(bytes) {
                Ok(TypeOnly { kind }) if !KNOWN_TYPES.contains(&kind.as_str()) => DecodeError::UnknownType(kind),
                _ => DecodeError::Invalid(error.to_string()),
            }
        })
    }

    /// Whether the link handles it itself (`Ping`, `Pong`): the application neither sends nor
    /// receives these.
    pub fn is_link_internal(&self) -> bool {
        matches!(self, PeerMessage::Ping { .. } | PeerMessage::Pong { .. })
    }
}

/// A room sid as a JSON string.
mod sid_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(sid: &RoomSid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&sid.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoomSid, D::Error> {
        String::deserialize(d).map(RoomSid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu_proto::{TrackKind, TrackSource};

    fn track() -> TrackInfo {
        TrackInfo {
            id: "TR_1".into(),
            kind: TrackKind::Video,
            source: TrackSource::Camera,
            name: String::new(),
            muted: false,
            layers: vec![],
        }
    }

    fn participant() -> RemoteParticipant {
        RemoteParticipant {
            info: ParticipantInfo { id: "PA_1".into(), identity: "alice".into(), tracks: vec![track()] },
            joined_at_ms: 1_700_000_000_000,
            media: vec![TrackCodec { track: track().id, mime: "video/VP8".into(), clock_rate: 90_000 }],
        }
    }

    fn one_of_each() -> Vec<PeerMessage> {
        let room = RoomId::from("standup");
        vec![
            PeerMessage::RoomHello {
                room: room.clone(),
                sid: RoomSid("RM_b_1".into()),
                participants: vec![participant()],
                reply: false,
            },
            PeerMessage::ParticipantJoined { room: room.clone(), participant: participant() },
            PeerMessage::ParticipantLeft {
                room: room.clone(),
                participant: "PA_1".into(),
                reason: LeaveReason::Timeout,
            },
            PeerMessage::TrackPublished {
                room: room.clone(),
                participant: "PA_1".into(),
                info: track(),
                mime: "video/VP8".into(),
                clock_rate: 90_000,
            },
            PeerMessage::TrackUnpublished { room: room.clone(), participant: "PA_1".into(), track: "TR_1".into() },
            PeerMessage::TrackMuted { room: room.clone(), track: "TR_1".into(), muted: true },
            PeerMessage::Data {
                room: room.clone(),
                from: "PA_1".into(),
                text: false,
                payload: Bytes::from_static(&[0, 255, 7]),
            },
            PeerMessage::Levels { room: room.clone(), levels: vec![("PA_1".into(), 90)] },
            PeerMessage::Subscribe {
                room: room.clone(),
                track: "TR_1".into(),
                dest: "10.0.0.2:7882".parse().unwrap(),
                ssrcs: vec![1, 2, 3],
            },
            PeerMessage::Unsubscribe { room: room.clone(), track: "TR_1".into() },
            PeerMessage::LinkLayers { room: room.clone(), track: "TR_1".into(), used: vec![0, 2], wanted: Some(2) },
            PeerMessage::LayersActive { room: room.clone(), track: "TR_1".into(), layers: vec![0, 1] },
            PeerMessage::RoomBye { room },
            PeerMessage::Ping { id: 3, sent_us: 1_000_000 },
            PeerMessage::Pong { id: 3, sent_us: 1_000_000 },
        ]
    }

    #[test]
    fn every_message_comes_back_as_it_was_sent() {
        let messages = one_of_each();
        assert_eq!(messages.len(), KNOWN_TYPES.len(), "one of each known type");
        for message in messages {
            let bytes = message.encode();
            assert_eq!(PeerMessage::decode(&bytes), Ok(message.clone()));
            let kind: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(KNOWN_TYPES.contains(&kind["type"].as_str().unwrap()), "{kind}");
        }
    }

    #[test]
    fn the_wire_form_is_stable() {
        let data = PeerMessage::Data {
            room: "r".into(),
            from: "PA_1".into(),
            text: true,
            payload: Bytes::from_static(b"hi!"),
        };
        assert_eq!(
            String::from_utf8(data.encode()).unwrap(),
            r#"{"type":"data","room":"r","from":"PA_1","text":true,"payload":"aGkh"}"#
        );
        let levels = PeerMessage::Levels { room: "r".into(), levels: vec![("PA_1".into(), 9), ("PA_2".into(), 0)] };
        assert_eq!(
            String::from_utf8(levels.encode()).unwrap(),
            r#"{"type":"levels","room":"r","levels":[["PA_1",9],["PA_2",0]]}"#
        );
    }

    #[test]
    fn a_newer_peers_message_is_told_apart_from_a_broken_one() {
        assert_eq!(
            PeerMessage::decode(br#"{"type":"record_start","track":"TR_1","ssrcs":[1,2]}"#),
            Err(DecodeError::UnknownType("record_start".into()))
        );
        for broken in [
            &br#"{"type":"room_bye"}"#[..],
            br#"{"room":"r"}"#,
            b"not json",
            br#"{"type":"data","room":"r","from":"p","text":true,"payload":"***"}"#,
        ] {
            assert!(
                matches!(PeerMessage::decode(broken), Err(DecodeError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
        // Fields a newer peer adds to a known message are ignored.
        assert_eq!(
            PeerMessage::decode(br#"{"type":"room_bye","room":"r","epoch":4}"#),
            Ok(PeerMessage::RoomBye { room: "r".into() })
        );
    }

    #[test]
    fn only_ping_and_pong_are_link_internal() {
        let internal: Vec<bool> = one_of_each().iter().map(PeerMessage::is_link_internal).collect();
        assert_eq!(internal.iter().filter(|&&x| x).count(), 2);
        assert!(internal[internal.len() - 2..].iter().all(|&x| x));
    }
}
