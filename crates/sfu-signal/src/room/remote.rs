//! Participants held by other nodes of the cluster, as the room on this node knows them. Each
//! node is the only authority on its own participants; it tells its peers by `PeerMessage`s
//! (docs/cluster.md, "Room state across nodes"), and this is what the receiver keeps.

use sfu_cluster::NodeId;
use sfu_cluster::mesh::RemoteParticipant;
use sfu_proto::{ParticipantId, ParticipantInfo, TrackInfo};

/// A participant connected to another node.
#[derive(Clone, Debug)]
pub struct RemoteMember {
    /// The node that holds it (and alone may change it).
    pub node: NodeId,
    pub info: ParticipantInfo,
    /// Its node's word on when it joined (ms, cluster clock).
    pub joined_at_ms: u64,
    /// What a relay needs to know of each of its tracks, beside `info.tracks`.
    pub tracks: Vec<RemoteTrack>,
}

/// A track published on another node.
#[derive(Clone, Debug)]
pub struct RemoteTrack {
    pub info: TrackInfo,
    pub mime: String,
    pub clock_rate: u32,
}

impl RemoteMember {
    pub fn new(node: NodeId, participant: RemoteParticipant) -> Self {
        RemoteMember {
            node,
            info: ParticipantInfo { tracks: Vec::new(), ..participant.info },
            joined_at_ms: participant.joined_at_ms,
            tracks: Vec::new(),
        }
    }

    pub fn id(&self) -> &ParticipantId {
        &self.info.id
    }

    pub fn info(&self) -> ParticipantInfo {
        self.info.clone()
    }

    /// Adds or replaces a track (a publisher may re-announce one, e.g. after a resync).
    pub fn put_track(&mut self, track: RemoteTrack) {
        self.info.tracks.retain(|t| t.id != track.info.id);
        self.tracks.retain(|t| t.info.id != track.info.id);
        self.info.tracks.push(track.info.clone());
        self.tracks.push(track);
    }

    pub fn remove_track(&mut self, id: &sfu_proto::TrackId) -> Option<RemoteTrack> {
        self.info.tracks.retain(|t| &t.id != id);
        let at = self.tracks.iter().position(|t| &t.info.id == id)?;
        Some(self.tracks.remove(at))
    }

    pub fn set_muted(&mut self, id: &sfu_proto::TrackId, muted: bool) -> bool {
        let mut found = false;
        for t in self.info.tracks.iter_mut().filter(|t| &t.id == id) {
            t.muted = muted;
            found = true;
        }
        for t in self.tracks.iter_mut().filter(|t| &t.info.id == id) {
            t.info.muted = muted;
        }
        found
    }
}
