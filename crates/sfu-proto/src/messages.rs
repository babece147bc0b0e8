//! Signaling messages, one enum per direction, tagged by `"type"` in JSON.

use crate::ids::*;
use crate::mesh::{MeshPeer, MeshTrack, SessionDescription, TopologyMode};
use serde::{Deserialize, Serialize};

/// A trickled ICE candidate, in the shape of the browser's `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The SDP candidate attribute without `a=`: `candidate:<foundation> <component> udp ...`.
    pub candidate: String,
    /// Mid of the media section it belongs to (`sdpMid` on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// Index of that media section in the SDP, from 0 (`sdpMLineIndex` on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment of the description it belongs to (`usernameFragment` on the
    /// wire): a mesh peer can tell a candidate of an earlier ICE generation from a current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// One simulcast layer as the publisher describes it in its `offer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer's rid, as in the SDP's `a=rid:<rid> send` line.
    pub rid: Rid,
    /// Width in pixels (in `offer`, a resolution hint); 0 when unknown.
    #[serde(default)]
    pub width: u32,
    /// Height in pixels (in `offer`, a resolution hint); 0 when unknown.
    #[serde(default)]
    pub height: u32,
}

/// What the publisher says about one of its transceivers, keyed by the transceiver's mid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackDescription {
    /// Mid of the sending media section in the offer SDP that this entry describes.
    pub mid: String,
    /// What the track shows; `unknown` when omitted.
    #[serde(default)]
    pub source: TrackSource,
    /// Free-form label shown to others in [`TrackInfo::name`]; empty when omitted.
    #[serde(default)]
    pub name: String,
    /// Simulcast layers in any order; empty for audio and single-layer video.
    #[serde(default)]
    pub layers: Vec<LayerInfo>,
}

/// A published track as the room sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Server-assigned id, used in `subscription`, `mute` and the subscriber `offer`'s `tracks`.
    pub id: TrackId,
    /// Audio or video, from the publisher's SDP media section.
    pub kind: TrackKind,
    /// The publisher's description, else `microphone` for audio and `camera` for video.
    pub source: TrackSource,
    /// Label from the publisher's description; empty when it gave none.
    #[serde(default)]
    pub name: String,
    /// True while the publisher has it muted: the server forwards none of its packets.
    pub muted: bool,
    /// Layers ordered from lowest to highest quality.
    #[serde(default)]
    pub layers: Vec<LayerInfo>,
}

/// A participant as the room sees it, in `joined`, `resumed` and `participant_joined`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Server-assigned id (`PA_` + 12 alphanumerics); kept across a resume.
    pub id: ParticipantId,
    /// The access token's `sub` claim; unique in the room.
    pub identity: Identity,
    /// The tracks it publishes at the time of the message.
    pub tracks: Vec<TrackInfo>,
}

/// A subscriber's wish for the quality of one track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerPreference {
    /// The lowest layer.
    Low,
    /// Layer 1, or layer 0 when the track has only one.
    Medium,
    /// The top layer.
    High,
    /// Let the server choose (the highest layer allowed by max_width/max_height).
    #[default]
    Auto,
}

/// The body of a `subscription` message: how one track should be forwarded to this subscriber.
/// The server remembers it per track, also for tracks subscribed to later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSettings {
    /// A track in the room (`error` `unknown_track` otherwise).
    pub track_id: TrackId,
    /// Wanted quality; also what dynacast keeps the publisher encoding. `auto` when omitted.
    #[serde(default)]
    pub layer: LayerPreference,
    /// Viewport width in pixels that `auto` fits the layer into; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    /// Viewport height in pixels that `auto` fits the layer into; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// True to stop forwarding this track (no `stream_state` follows); false when omitted.
    #[serde(default)]
    pub paused: bool,
}

/// What a client sends on the `/rtc` WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message of a new session.
    Join {
        /// Access token (HS256 JWT): `room` names the room (created on first join), `sub` the identity.
        token: String,
        /// How many nodes sent this join on (`redirect`) before; a node never sends on a join
        /// that was already sent on twice.
        #[serde(default, skip_serializing_if = "is_zero")]
        redirects: u32,
    },
    /// First message of a reconnecting session, within the departure timeout.
    Resume {
        /// The `session_token` from `joined`.
        session_token: String,
    },
    /// The publisher connection's offer, with a description of each of its media sections.
    Offer {
        /// SDP offer of the publisher connection; send another to renegotiate.
        sdp: String,
        /// One entry per sending media section; undescribed audio is `microphone`, video `camera`.
        #[serde(default)]
        tracks: Vec<TrackDescription>,
    },
    /// The answer to a subscriber-connection `offer` from the server.
    Answer {
        /// SDP answer to the server's latest `offer`.
        sdp: String,
    },
    /// A trickled ICE candidate; optional, as the server is ICE-lite. There is no reply.
    Candidate {
        /// The connection it is for; ignored if that connection does not exist yet.
        target: PeerRole,
        /// The client's candidate, as the browser reports it.
        candidate: IceCandidate,
    },
    /// Quality, viewport and pause settings for one track; the fields sit next to `type`.
    Subscription(SubscriptionSettings),
    /// Mute or unmute one of the client's own tracks; others get `track_muted`, the sender nothing.
    Mute {
        /// One of the sender's own published tracks (`error` `unknown_track` otherwise).
        track_id: TrackId,
        /// True: drop its packets for everyone. False: forward again (video from the next keyframe).
        muted: bool,
    },
    /// Application-level ping; answered by `pong`.
    Ping {
        /// Any number, echoed in `pong`; 0 when omitted.
        #[serde(default)]
        id: u64,
    },
    /// Leave the room at once; others get `participant_left`, the socket is closed with 1000.
    Leave,
    /// For a mesh peer: a description and/or a candidate of the connection to it, relayed as
    /// `peer_signal` (only in mesh mode, only to a member of the same mesh).
    PeerSignal {
        /// The peer it is for.
        to: ParticipantId,
        /// The number of the connection it is for, as `topology` gave it for this peer; a
        /// signal for an earlier connection is refused with `stale_signal`. Absent: not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<u64>,
        /// An offer or an answer, when this message carries one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<SessionDescription>,
        /// A trickled candidate, when this message carries one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<IceCandidate>,
        /// With a description: what each of the sender's sending media sections carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tracks: Vec<MeshTrack>,
        /// A switch note: the sender now shows `to`'s media from this path (`mesh` or `sfu`), so
        /// `to` may stop the old one. Relayed in either mode (a switch to the SFU ends the mesh).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved: Option<TopologyMode>,
    },
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
    /// The server shut down (SIGTERM) and closed every session.
    Shutdown,
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
    /// `join` refused: the room holds `limits.participants_per_room` participants and viewers.
    RoomFull,
    /// `join` refused: the node holds `limits.participants_per_node` participants and viewers, or
    /// the room would be new and the node holds `limits.rooms_per_node` rooms.
    NodeFull,
    /// `offer` refused: it would publish more than `limits.tracks_per_participant` tracks.
    TooManyTracks,
    /// `offer` refused: it has more than `limits.media_sections_per_offer` media sections.
    TooManySections,
    /// `candidate` refused: the connection was sent `limits.candidates_per_connection` already.
    TooManyCandidates,
    /// `join` (or a WHIP/WHEP session) refused: the node is shutting down (SIGTERM).
    Draining,
    /// `join` refused: the room is a forced mesh (`topology` `mesh`) and holds its most members.
    MeshFull,
    /// `peer_signal` refused: the room is not in mesh mode (now).
    NotMesh,
    /// `peer_signal` refused: its `to` is not another member of the sender's mesh.
    UnknownPeer,
    /// `peer_signal` refused: the sender is over its rate of relayed messages.
    RateLimited,
    /// `peer_signal` refused: it is for an earlier connection between the two peers (one that
    /// a later `topology` replaced).
    StaleSignal,
}

impl ErrorCode {
    /// Every error code, for tables and tests.
    pub const ALL: [ErrorCode; 18] = [
        Self::BadMessage,
        Self::AlreadyJoined,
        Self::NotAllowed,
        Self::BadSdp,
        Self::UnknownTrack,
        Self::BadState,
        Self::Internal,
        Self::RoomFull,
        Self::NodeFull,
        Self::TooManyTracks,
        Self::TooManySections,
        Self::TooManyCandidates,
        Self::Draining,
        Self::MeshFull,
        Self::NotMesh,
        Self::UnknownPeer,
        Self::RateLimited,
        Self::StaleSignal,
    ];

    /// The code as sent on the wire (`"bad_sdp"`), also the `error` of WHIP/WHEP JSON bodies.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadMessage => "bad_message",
            Self::AlreadyJoined => "already_joined",
            Self::NotAllowed => "not_allowed",
            Self::BadSdp => "bad_sdp",
            Self::UnknownTrack => "unknown_track",
            Self::BadState => "bad_state",
            Self::Internal => "internal",
            Self::RoomFull => "room_full",
            Self::NodeFull => "node_full",
            Self::TooManyTracks => "too_many_tracks",
            Self::TooManySections => "too_many_sections",
            Self::TooManyCandidates => "too_many_candidates",
            Self::Draining => "draining",
            Self::MeshFull => "mesh_full",
            Self::NotMesh => "not_mesh",
            Self::UnknownPeer => "unknown_peer",
            Self::RateLimited => "rate_limited",
            Self::StaleSignal => "stale_signal",
        }
    }
}

/// What the server sends on the `/rtc` WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `join` on a node that is draining or full while another node of the cluster
    /// serves: join there (the socket closes with 4307 `redirected`), sending the same `join`
    /// with `redirects` one higher.
    Redirect {
        /// The other node's signaling WebSocket URL (`ws://` or `wss://`, ending in `/rtc`).
        url: String,
    },
    /// Reply to `join`: the client is in the room.
    Joined {
        /// Protocol version spoken by the server ([`crate::PROTOCOL_VERSION`]).
        protocol: u32,
        /// Room name, from the token's `room` claim.
        room: RoomId,
        /// The client itself, with no tracks yet.
        participant: ParticipantInfo,
        /// Present this in `resume` to get this session back after a dropped socket.
        session_token: String,
        /// Everyone else already in the room.
        participants: Vec<ParticipantInfo>,
        /// How long, in milliseconds, the session outlives a dropped socket, waiting for `resume`.
        departure_timeout_ms: u64,
        /// The room's id for this run of it (`RM_…`): the same on every node of a cluster, new
        /// when the room is made again after it closed.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        room_sid: String,
        /// STUN and TURN servers for the client's peer connections (TURN with time-limited
        /// credentials), the embedded TURN server first; none when the server offers none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServerInfo>,
    },
    /// The session was resumed; the client should restart ICE on its publisher connection.
    Resumed {
        /// The client itself, with its published tracks and their ids.
        participant: ParticipantInfo,
        /// Everyone else now in the room.
        participants: Vec<ParticipantInfo>,
    },
    /// Answer to the publisher connection's offer.
    Answer {
        /// SDP answer, carrying the server's host candidate.
        sdp: String,
    },
    /// Offer for the subscriber connection; `tracks` maps each media section's mid to its track.
    Offer {
        /// SDP offer; at most one is in flight, later changes follow right after the `answer`.
        sdp: String,
        /// The track carried by each media section; sections of removed tracks are not listed.
        tracks: Vec<MidTrack>,
    },
    /// The server's single host candidate for one connection, also in the SDP; may be ignored.
    Candidate {
        /// `publisher` right after an `answer`, `subscriber` right after an `offer`.
        target: PeerRole,
        /// The server's host candidate on the shard's UDP port.
        candidate: IceCandidate,
    },
    /// Someone joined the room (WHIP publishers included); sent to everyone else.
    ParticipantJoined {
        /// The newcomer, with no tracks yet (they come as `track_published`).
        participant: ParticipantInfo,
    },
    /// Someone left the room; the `track_unpublished` messages for its tracks come first.
    ParticipantLeft {
        /// Id of the participant that left.
        participant_id: ParticipantId,
        /// Its identity (the token's `sub`).
        identity: Identity,
        /// Why it left; `removed` is never sent yet.
        reason: LeaveReason,
    },
    /// A track was published; sent to everyone, its publisher included (so it learns the id).
    TrackPublished {
        /// The publisher.
        participant_id: ParticipantId,
        /// The new track; a layer size is 0 where it was unknown at publish time.
        track: TrackInfo,
    },
    /// A track is gone (unpublished, or its publisher left); sent to everyone else.
    TrackUnpublished {
        /// The publisher.
        participant_id: ParticipantId,
        /// The track that is gone; later subscriber `offer`s no longer list it.
        track_id: TrackId,
    },
    /// A publisher muted or unmuted one of its tracks; sent to everyone else.
    TrackMuted {
        /// The publisher.
        participant_id: ParticipantId,
        /// The track whose mute state changed.
        track_id: TrackId,
        /// True while the server forwards none of the track's packets.
        muted: bool,
    },
    /// The server stopped (or resumed) sending a track this participant subscribes to, e.g.
    /// because its downlink cannot carry even the track's lowest layer.
    StreamState {
        /// The track's publisher.
        participant_id: ParticipantId,
        /// The subscribed track whose forwarding changed.
        track_id: TrackId,
        /// `paused` when forwarding stopped, `active` when it resumed.
        state: StreamState,
        /// Why it is paused (`bandwidth`); absent when active.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Dynacast: encode exactly the simulcast layers marked active of this participant's own
    /// track (no subscriber wants the others). Sent on change and again after a resume.
    PublisherLayers {
        /// One of the recipient's own simulcast tracks.
        track_id: TrackId,
        /// Every layer of that track, each with whether to encode it.
        layers: Vec<LayerState>,
    },
    /// The room's active speakers changed: loudest first (the first is the dominant speaker);
    /// empty when nobody speaks. Sent to everyone in the room, and on join.
    ActiveSpeakers {
        /// Who is speaking now, loudest first.
        speakers: Vec<SpeakerInfo>,
    },
    /// A data message this participant sent on its data channel was not delivered to anyone.
    DataRefused {
        /// Why: too large to relay, or over the participant's data rate.
        reason: DataRefusal,
        /// Size of the refused message's payload, in bytes.
        bytes: u64,
    },
    /// How the room carries media now, and (in mesh mode) whom to connect to. Sent after
    /// `joined` and on every change, in rooms whose topology is not `sfu`.
    Topology {
        /// `mesh`: connect to each of `peers` directly and send nothing to the server; `sfu`:
        /// send to and receive from the server.
        mode: TopologyMode,
        /// The other members of the mesh, each with the recipient's role towards it; empty in
        /// `sfu` mode.
        peers: Vec<MeshPeer>,
    },
    /// A mesh peer's description and/or candidate for the connection to it.
    PeerSignal {
        /// The peer that sent it.
        from: ParticipantId,
        /// The number of the connection it is for (as in `topology`), when the sender gave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<u64>,
        /// An offer or an answer, when this message carries one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<SessionDescription>,
        /// A trickled candidate, when this message carries one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<IceCandidate>,
        /// With a description: what each of the peer's sending media sections carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tracks: Vec<MeshTrack>,
        /// A switch note: the peer now shows the recipient's media from this path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved: Option<TopologyMode>,
    },
    /// Reply to `ping`.
    Pong {
        /// The `id` of the `ping` it answers.
        id: u64,
    },
    /// A request failed; the socket stays open.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people (e.g. `you publish no track TR_x`).
        message: String,
        /// The `type` of the request that failed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

/// One active speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerInfo {
    /// The speaking participant.
    pub participant_id: ParticipantId,
    /// Smoothed loudness, 0 (silent) to 1 (full scale).
    pub level: f32,
}

/// Whether a publisher should encode one simulcast layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerState {
    /// The layer, by the rid the publisher gave it.
    pub rid: Rid,
    /// True: some subscriber wants it, encode it. False: none has for 3 s, stop encoding it.
    pub active: bool,
}

/// Why a data message was not relayed (`data_refused`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataRefusal {
    /// Its relayed envelope would exceed what a data channel can carry (docs/protocol.md, "Data
    /// messages").
    TooLarge,
    /// The participant sent more messages or bytes per second than `limits.data_*` allow.
    RateLimited,
}

impl DataRefusal {
    /// The name on the wire, also the `reason` label of `sfu_data_messages_refused_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataRefusal::TooLarge => "too_large",
            DataRefusal::RateLimited => "rate_limited",
        }
    }
}

/// Whether the server is sending a subscribed track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// The server forwards the track again.
    Active,
    /// The server stopped forwarding it; `reason` says why.
    Paused,
}

/// A STUN or TURN server in the shape of WebRTC's `RTCIceServer`, so a client can pass it to
/// its `RTCPeerConnection` as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServerInfo {
    /// `stun:`, `turn:` or `turns:` URLs of one server (one set of credentials).
    pub urls: Vec<String>,
    /// TURN username (`<expiry unix seconds>:<identity>` for minted credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Which track one media section of a subscriber `offer` carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MidTrack {
    /// Mid of the media section in the offer SDP.
    pub mid: String,
    /// The track it carries.
    pub track_id: TrackId,
    /// The track's publisher.
    pub participant_id: ParticipantId,
}

/// Leaves `redirects` out of a first `join`.
fn is_zero(n: &u32) -> bool {
    *n == 0
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
                username_fragment: None,
            },
        })
        .unwrap();
        assert_eq!(json["candidate"]["sdpMLineIndex"], 0);
        assert_eq!(json["target"], "subscriber");
    }

    /// The refusal a sender is told of, as docs/protocol.md shows it; each reason's wire name is
    /// its metric label.
    #[test]
    fn data_refused_matches_the_docs() {
        let m = ServerMessage::DataRefused { reason: DataRefusal::TooLarge, bytes: 40000 };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"type":"data_refused","reason":"too_large","bytes":40000}"#);
        assert!(include_str!("../../../docs/protocol.md").contains(&json));
        for reason in [DataRefusal::TooLarge, DataRefusal::RateLimited] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    /// Each code's name is what serde sends, and docs/protocol.md has a row for it.
    #[test]
    fn error_codes_match_the_wire_and_the_docs() {
        let doc = include_str!("../../../docs/protocol.md");
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.name());
            let row = format!("| `{}` |", code.name());
            assert!(doc.contains(&row), "docs/protocol.md lacks a row {row}");
        }
    }
}
