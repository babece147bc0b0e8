//! What this node tells the other nodes of the cluster about its own participants (docs/
//! cluster.md, "What crosses"): a snapshot when it takes a room or a link comes up, then every
//! change, in order, on the same link. Room events go to every linked node (a node that does not
//! hold the room drops them, and asks for a snapshot when it takes the room); data messages and
//! audio levels only to the nodes known to hold it. Without a cluster all of this does nothing.

use sfu_cluster::membership::RoomSid;
use sfu_cluster::mesh::{PeerMessage, RemoteParticipant, TrackCodec};
use sfu_cluster::{Cluster, NodeId};
use sfu_proto::{LeaveReason, ParticipantId, RoomId};

use super::{Hub, MediaControl, Participant, Room, RoomRef, TrackEntry};

impl<M: MediaControl> Hub<M> {
    /// The room's local participants, as a peer keeps them.
    pub(super) fn room_hello(&self, room: &Room, reply: bool) -> PeerMessage {
        PeerMessage::RoomHello {
            room: room.id.clone(),
            sid: RoomSid(room.sid.clone()),
            participants: room.participants.values().map(as_remote).collect(),
            reply,
        }
    }

    pub(super) fn cluster_send(&self, node: &NodeId, message: PeerMessage) {
        self.cluster.send(node, message);
    }

    /// To every linked node.
    pub(super) fn tell_peers(&self, message: PeerMessage) {
        self.cluster.broadcast(message);
    }

    /// To the nodes that hold `room`.
    pub(super) fn tell_room_peers(&self, room: &Room, message: PeerMessage) {
        for node in &room.peer_nodes {
            self.cluster.send(node, message.clone());
        }
    }

    pub(super) fn announce_joined(&self, room: &Room, id: &ParticipantId, first_here: bool) {
        if first_here {
            // The peers that hold the room answer with their own snapshot.
            self.tell_peers(self.room_hello(room, false));
        } else if let Some(p) = room.participants.get(id) {
            self.tell_peers(PeerMessage::ParticipantJoined { room: room.id.clone(), participant: as_remote(p) });
        }
    }

    pub(super) fn announce_left(&self, room: &Room, id: &ParticipantId, reason: LeaveReason) {
        self.tell_peers(PeerMessage::ParticipantLeft { room: room.id.clone(), participant: id.clone(), reason });
    }

    pub(super) fn announce_closed(&self, room: &RoomId) {
        self.tell_peers(PeerMessage::RoomBye { room: room.clone() });
    }

    pub(super) fn announce_published(&self, room: &Room, id: &ParticipantId, track: &TrackEntry) {
        self.tell_peers(PeerMessage::TrackPublished {
            room: room.id.clone(),
            participant: id.clone(),
            info: track.info.clone(),
            mime: track.mime.clone(),
            clock_rate: track.clock_rate,
        });
    }

    pub(super) fn announce_unpublished(&self, room: &Room, id: &ParticipantId, track: &TrackEntry) {
        self.tell_peers(PeerMessage::TrackUnpublished {
            room: room.id.clone(),
            participant: id.clone(),
            track: track.info.id.clone(),
        });
    }

    pub(super) fn announce_muted(&self, room: &Room, track: &TrackEntry) {
        self.tell_peers(PeerMessage::TrackMuted {
            room: room.id.clone(),
            track: track.info.id.clone(),
            muted: track.info.muted,
        });
    }

    /// Audio levels of local publishers, for the peers' rankings (0..=127).
    pub(super) fn share_levels(&self, room: &Room, levels: &[(ParticipantId, f32)]) {
        if room.peer_nodes.is_empty() || levels.is_empty() {
            return;
        }
        let levels =
            levels.iter().map(|(id, level)| (id.clone(), (level.clamp(0.0, 1.0) * 127.0).round() as u8)).collect();
        self.tell_room_peers(room, PeerMessage::Levels { room: room.id.clone(), levels });
    }

    /// A local participant's data message, for the peers' local participants.
    pub fn share_data(&self, room: &Room, from: &ParticipantId, text: bool, payload: &bytes::Bytes) {
        if room.peer_nodes.is_empty() {
            return;
        }
        let message = PeerMessage::Data { room: room.id.clone(), from: from.clone(), text, payload: payload.clone() };
        self.tell_room_peers(room, message);
    }

    /// Every room on this node (for a link that came up or went down).
    pub(super) fn all_rooms(&self) -> Vec<RoomRef> {
        self.rooms.lock().values().cloned().collect()
    }
}

fn as_remote(p: &Participant) -> RemoteParticipant {
    RemoteParticipant {
        info: p.info(),
        joined_at_ms: p.joined_at_ms,
        media: p
            .tracks
            .iter()
            .map(|t| TrackCodec { track: t.info.id.clone(), mime: t.mime.clone(), clock_rate: t.clock_rate })
            .collect(),
    }
}
