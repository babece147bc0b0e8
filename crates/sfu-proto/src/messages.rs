//! Signaling messages, one enum per direction, tagged by `"type"` in JSON.

use crate::ids::*;
use serde::{Deserialize, Serialize};

/// A trickled ICE candidate, in the shape of the browser's `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
}

/// One simulcast layer as the publisher describes it in its `offer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub rid: Rid,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

/// What the publisher says about one of its transceivers, keyed by the transceiver's mid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackDescription {
    pub mid: String,
    #[serde(default)]
    pub source: TrackSource,
    #[serde(default)]
    pub name: String,
    /// Simulcast layers in any order; empty for audio and single-layer video.
    #[serde(default)]
    pub layers: Vec<LayerInfo>,
}

/// A published track as the room sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub id: TrackId,
    pub kind: TrackKind,
    pub source: TrackSource,
    #[serde(default)]
    pub name: String,
    pub muted: bool,
    /// Layers ordered from lowest to highest quality.
    #[serde(default)]
    pub layers: Vec<LayerInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub identity: Identity,
    pub tracks: Vec<TrackInfo>,
}

/// A subscriber's wish for the quality of one track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerPreference {
    Low,
    Medium,
    High,
    /// Let the server choose (the highest layer allowed by max_width/max_height).
    #[default]
    Auto,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSettings {
    pub track_id: TrackId,
    #[serde(default)]
    pub layer: LayerPreference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    #[serde(default)]
    pub paused: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message of a new session.
    Join {
        token: String,
    },
    /// First message of a reconnecting session, within the departure timeout.
    Resume {
        session_token: String,
    },
    /// The publisher connection's offer, with a description of each of its media sections.
    Offer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<TrackDescription>,
    },
    /// The answer to a subscriber-connection `offer` from the server.
    Answer {
        sdp: String,
    },
    Candidate {
        target: PeerRole,
        candidate: IceCandidate,
    },
    Subscription(SubscriptionSettings),
    Mute {
        track_id: TrackId,
        muted: bool,
    },
    Ping {
        #[serde(default)]
        id: u64,
    },
    Leave,
}

/// Why a participant left the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It said `leave`.
    Left,
    /// Its socket dropped and it did not resume within the departure timeout.
    Timeout,
    /// The same identity joined again from elsewhere.
    Replaced,
    /// An admin removed it.
    Removed,
}

/// Machine-readable error codes of `error` replies (docs/protocol.md lists each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or not a known message shape.
    BadMessage,
    /// `join`/`resume` sent on a session that already has one.
    AlreadyJoined,
    /// The token does not grant this action.
    NotAllowed,
    /// The SDP could not be parsed or accepted.
    BadSdp,
    /// A message named a track that does not exist.
    UnknownTrack,
    /// A message arrived in a state where it makes no sense (e.g. an answer with no offer).
    BadState,
    /// The server failed to carry out a valid request.
    Internal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        protocol: u32,
        room: RoomId,
        participant: ParticipantInfo,
        /// Present this in `resume` to get this session back after a dropped socket.
        session_token: String,
        /// Everyone else already in the room.
        participants: Vec<ParticipantInfo>,
        departure_timeout_ms: u64,
    },
    /// The session was resumed; the client should restart ICE on its publisher connection.
    Resumed {
        participant: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
    },
    /// Answer to the publisher connection's offer.
    Answer {
        sdp: String,
    },
    /// Offer for the subscriber connection; `tracks` maps each media section's mid to its track.
    Offer {
        sdp: String,
        tracks: Vec<MidTrack>,
    },
    Candidate {
        target: PeerRole,
        candidate: IceCandidate,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: ParticipantId,
        identity: Identity,
        reason: LeaveReason,
    },
    TrackPublished {
        participant_id: ParticipantId,
        track: TrackInfo,
    },
    TrackUnpublished {
        participant_id: ParticipantId,
        track_id: TrackId,
    },
    TrackMuted {
        participant_id: ParticipantId,
        track_id: TrackId,
        muted: bool,
    },
    /// The server stopped (or resumed) sending a track this participant subscribes to, e.g.
    /// because its downlink cannot carry even the track's lowest layer.
    StreamState {
        participant_id: ParticipantId,
        track_id: TrackId,
        state: StreamState,
        /// Why it is paused (`bandwidth`); absent when active.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Dynacast: encode exactly the simulcast layers marked active of this participant's own
    /// track (no subscriber wants the others). Sent on change and again after a resume.
    PublisherLayers {
        track_id: TrackId,
        layers: Vec<LayerState>,
    },
    /// The room's active speakers changed: loudest first (the first is the dominant speaker);
    /// empty when nobody speaks. Sent to everyone in the room, and on join.
    ActiveSpeakers {
        speakers: Vec<SpeakerInfo>,
    },
    Pong {
        id: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the request that failed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

/// One active speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerInfo {
    pub participant_id: ParticipantId,
    /// Smoothed loudness, 0 (silent) to 1 (full scale).
    pub level: f32,
}

/// Whether a publisher should encode one simulcast layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerState {
    pub rid: Rid,
    pub active: bool,
}

/// Whether the server is sending a subscribed track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    Active,
    Paused,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MidTrack {
    pub mid: String,
    pub track_id: TrackId,
    pub participant_id: ParticipantId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_use_snake_case_type_tags() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscription","track_id":"TR_1","layer":"low"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscription(SubscriptionSettings {
                track_id: "TR_1".into(),
                layer: LayerPreference::Low,
                max_width: None,
                max_height: None,
                paused: false,
            })
        );
        let leave: ClientMessage = serde_json::from_str(r#"{"type":"leave"}"#).unwrap();
        assert_eq!(leave, ClientMessage::Leave);
    }

    #[test]
    fn unknown_type_is_an_error_not_a_default() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"explode"}"#).is_err());
    }

    #[test]
    fn candidate_uses_browser_field_names() {
        let json = serde_json::to_value(ServerMessage::Candidate {
            target: PeerRole::Subscriber,
            candidate: IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 7882 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
        })
        .unwrap();
        assert_eq!(json["candidate"]["sdpMLineIndex"], 0);
        assert_eq!(json["target"], "subscriber");
    }
}
