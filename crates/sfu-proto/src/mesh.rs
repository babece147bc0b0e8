//! What a mesh room (peer-to-peer media, the server relaying only signaling) adds to the
//! protocol: the room's topology, told by the server, and the peers' own offers, answers and
//! candidates, relayed by it (docs/protocol.md, "Mesh").

use crate::ids::{ParticipantId, TrackSource};
use serde::{Deserialize, Serialize};

/// How a room carries media, as configured (`rooms.topology`) or asked for by a token's
/// `topology` claim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologySetting {
    /// A mesh while the room is small enough, the SFU otherwise.
    Auto,
    /// Always the SFU.
    #[default]
    Sfu,
    /// Always a mesh; joiners beyond the mesh's size are refused.
    Mesh,
}

/// How a room carries media right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologyMode {
    /// Peers send media to each other; the server sends none.
    Mesh,
    /// Everyone sends to the server, which forwards.
    Sfu,
}

/// One other member of a mesh, as told to a participant in `topology`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshPeer {
    /// The peer.
    pub participant_id: ParticipantId,
    /// The recipient's own role towards this peer in perfect negotiation: the later joiner of
    /// the two is polite (it yields when both offer at once), the earlier one impolite.
    pub polite: bool,
    /// The number of the connection between the two, the same at both ends: it grows each time
    /// the pair meets again in a mesh (after an SFU spell), and a peer whose number changed
    /// needs a new RTCPeerConnection. `peer_signal` carries it so a late signal for the old
    /// connection is not applied to the new one.
    #[serde(default)]
    pub connection: u64,
}

/// The kind of a relayed session description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdpKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// A provisional answer.
    Pranswer,
    /// Undo of a local offer (never needs relaying, accepted for completeness).
    Rollback,
}

/// A session description in the browser's `RTCSessionDescriptionInit` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer`, `answer`, ...
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP text.
    #[serde(default)]
    pub sdp: String,
}

/// What one sending media section of a mesh connection carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshTrack {
    /// Mid of the section in the sender's description.
    pub mid: String,
    /// What the track shows.
    #[serde(default)]
    pub source: TrackSource,
}

/// The most [`MeshTrack`] entries one `peer_signal` may carry.
pub const MAX_MESH_TRACKS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ClientMessage, ServerMessage};

    /// The `topology` message as docs/protocol.md shows it.
    #[test]
    fn topology_matches_the_docs() {
        let m = ServerMessage::Topology {
            mode: TopologyMode::Mesh,
            peers: vec![MeshPeer {
                participant_id: ParticipantId("PA_7HcLr0pYv3Ne".into()),
                polite: true,
                connection: 2,
            }],
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"type":"topology","mode":"mesh","peers":[{"participant_id":"PA_7HcLr0pYv3Ne","polite":true,"connection":2}]}"#
        );
        assert!(include_str!("../../../docs/protocol.md").contains(&json));
    }

    /// A browser's `RTCSessionDescriptionInit` and source list are taken as they come.
    #[test]
    fn peer_signal_takes_the_browser_shapes() {
        let text = r#"{"type":"peer_signal","to":"PA_1","connection":4,"description":{"type":"offer","sdp":"v=0"},
            "tracks":[{"mid":"1","source":"camera"}]}"#;
        let ClientMessage::PeerSignal { to, connection, description, candidate, tracks, moved } =
            serde_json::from_str(text).unwrap()
        else {
            panic!("not a peer_signal")
        };
        assert_eq!(to.as_str(), "PA_1");
        assert_eq!(connection, Some(4));
        assert_eq!(moved, None);
        assert_eq!(description, Some(SessionDescription { kind: SdpKind::Offer, sdp: "v=0".into() }));
        assert!(candidate.is_none());
        assert_eq!(tracks, vec![MeshTrack { mid: "1".into(), source: TrackSource::Camera }]);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"peer_signal"}"#).is_err(), "`to` is required");
    }

    /// A browser candidate's `usernameFragment` (its ICE generation) survives the relay.
    #[test]
    fn candidates_keep_their_username_fragment() {
        let text = r#"{"type":"peer_signal","to":"PA_1","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host",
            "sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"aB3d"}}"#;
        let ClientMessage::PeerSignal { candidate: Some(candidate), .. } = serde_json::from_str(text).unwrap() else {
            panic!("no candidate")
        };
        assert_eq!(candidate.username_fragment.as_deref(), Some("aB3d"));
        let relayed = serde_json::to_value(ServerMessage::PeerSignal {
            from: ParticipantId("PA_2".into()),
            connection: Some(4),
            description: None,
            candidate: Some(candidate),
            tracks: Vec::new(),
            moved: None,
        })
        .unwrap();
        assert_eq!(relayed["candidate"]["usernameFragment"], "aB3d");
        assert_eq!(relayed["connection"], 4);
    }
}
