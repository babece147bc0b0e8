//! Participants held by other nodes of the cluster, as the room on this node knows them. Each
//! node is the only authority on its own participants; it tells its peers by `PeerMessage`s
//! (docs/cluster.md, "Room state across nodes"), and this is what the receiver keeps.

use sfu_cluster::NodeId;
use sfu_cluster::mesh::RemoteParticipant;
use sfu_proto::{ParticipantId, ParticipantInfo, TrackInfo};
use sfu_transport::TrackKey;

use super::TrackEntry;

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
    /// Where it lands here once relayed (asked for while this node has subscribers).
    pub relay: Option<TrackKey>,
}

impl RemoteTrack {
    pub fn new(info: TrackInfo, mime: String, clock_rate: u32) -> Self {
        RemoteTrack { info, mime, clock_rate, relay: None }
    }

    /// As a local subscriber subscribes to it: the relay track here.
    pub fn entry(&self) -> Option<TrackEntry> {
        let key = self.relay?;
        Some(TrackEntry {
            info: self.info.clone(),
            key,
            mime: self.mime.clone(),
            clock_rate: self.clock_rate,
            encoding: None,
        })
    }
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

    /// Adds a track, or refreshes one known (a resync announces it again; its relay stays).
    pub fn put_track(&mut self, track: RemoteTrack) {
        if let Some(known) = self.tracks.iter_mut().find(|t| t.info.id == track.info.id) {
            known.info = track.info.clone();
            for t in self.info.tracks.iter_mut().filter(|t| t.id == track.info.id) {
                *t = track.info.clone();
            }
            return;
        }
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
