//! What the control plane knows about a room: its participants, their tracks and
//! subscriptions, and the state of each subscriber connection's negotiation.

use sfu_proto::{
    Identity, ParticipantId, ParticipantInfo, RoomId, ServerMessage, SubscriptionSettings, TrackId, TrackInfo,
};
use sfu_transport::{ConnId, TrackKey};
use std::collections::{HashMap, HashSet};

use super::outbox::{Outbox, Outgoing};
pub use super::remote::{RemoteMember, RemoteTrack};
use crate::auth::Grants;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantKind {
    /// Joined over `/rtc`; resumable after its socket drops.
    Signaling,
    /// Published over WHIP; lives until its resource is deleted.
    Whip,
}

/// A published track with what subscribers' forwarders need to know about it.
#[derive(Clone, Debug)]
pub struct TrackEntry {
    pub info: TrackInfo,
    pub key: TrackKey,
    pub mime: String,
    pub clock_rate: u32,
    /// Dynacast: the layers the publisher was last told to encode (`None`: all, never told).
    pub encoding: Option<Vec<sfu_proto::LayerState>>,
}

/// The server-offers negotiation of a subscriber connection (one offer in flight at a time).
#[derive(Clone, Copy, Debug, Default)]
pub struct Negotiation {
    pub awaiting_answer: bool,
    /// Something changed while an offer was in flight (or the socket was away): offer again.
    pub needs_offer: bool,
    pub ice_restart: bool,
}

pub struct Participant {
    pub id: ParticipantId,
    pub identity: Identity,
    pub grants: Grants,
    pub kind: ParticipantKind,
    pub tracks: Vec<TrackEntry>,
    pub publisher_conn: ConnId,
    pub subscriber_conn: ConnId,
    /// None while the socket is away (or for WHIP).
    pub outbox: Option<Outbox>,
    /// `joined` was sent: room events before it are left out (`joined` carries the state they
    /// would have changed).
    pub welcomed: bool,
    /// When it joined, in ms on the cluster's clock: of two sessions with one identity on two
    /// nodes, the older gives way.
    pub joined_at_ms: u64,
    /// Bumped each time a socket attaches, so a stale departure timer does nothing.
    pub generation: u64,
    pub negotiation: Negotiation,
    /// Settings the participant asked for, kept so they survive re-subscription.
    pub settings: HashMap<TrackId, SubscriptionSettings>,
    /// Tracks currently added to this participant's subscriber connection.
    pub subscribed: HashSet<TrackKey>,
    /// The subscriber connection exists once a first track was added to it.
    pub has_subscriber_conn: bool,
    /// Candidates the client trickled to each connection.
    pub trickled: Trickled,
}

/// Candidates trickled to a participant's two connections, each counted against
/// `limits.candidates_per_connection`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trickled {
    pub publisher: usize,
    pub subscriber: usize,
}

impl Participant {
    pub fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            id: self.id.clone(),
            identity: self.identity.clone(),
            tracks: self.tracks.iter().map(|t| t.info.clone()).collect(),
        }
    }

    pub fn send(&self, message: ServerMessage) {
        if !self.welcomed {
            return;
        }
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outgoing::Message(message));
        }
    }

    pub fn subscribes(&self) -> bool {
        self.grants.subscribe && self.kind == ParticipantKind::Signaling
    }
}

/// A WHEP playback session: a hidden viewer of one participant's tracks.
pub struct Viewer {
    pub conn: ConnId,
    pub identity: Identity,
    /// Candidates the client trickled to `conn`.
    pub trickled: usize,
}

pub struct Room {
    pub id: RoomId,
    /// The room's id for this run of it, from the cluster's lease (empty until the first join
    /// has taken it).
    pub sid: String,
    pub participants: HashMap<ParticipantId, Participant>,
    /// Participants connected to other nodes of the cluster, as their nodes last said.
    pub remote: HashMap<ParticipantId, RemoteMember>,
    /// Peer nodes known to hold this room too (they said so with a `RoomHello`): data messages
    /// and audio levels go to them.
    pub peer_nodes: HashSet<sfu_cluster::NodeId>,
    /// Linked peers that hold the room by Redis's word and have not sent their snapshot yet:
    /// the first local participant's `joined` waits for them a moment.
    pub awaiting_snapshots: HashSet<sfu_cluster::NodeId>,
    /// Local tracks relayed to other nodes (that asked with `Subscribe`), by track.
    pub relayed_to: HashMap<TrackId, HashSet<sfu_cluster::NodeId>>,
    pub viewers: HashMap<String, Viewer>,
    /// Who is speaking, from the publishers' audio levels.
    pub speakers: sfu_core::ActiveSpeakers<ParticipantId>,
    /// The ranking last announced (sent again to each participant that joins).
    pub announced_speakers: Vec<sfu_proto::SpeakerInfo>,
    /// Top-N audio: who holds one of the places whose audio is forwarded in a large room.
    pub loudest: sfu_core::LoudestSpeakers<ParticipantId>,
    /// Whether the room is large enough for top-N audio (as last applied).
    pub top_n_applies: bool,
    /// Participants whose audio the shards were last told to hold back.
    pub held_back: HashSet<ParticipantId>,
    /// Mesh or SFU, and who is in the mesh (chosen by the room's first participant).
    pub topology: super::topology::Topology,
    /// When a review of the topology is due (its hysteresis), if one is scheduled.
    pub topology_review_at: Option<std::time::Instant>,
    /// Each mesh member's budget of relayed `peer_signal` messages.
    pub signal_budgets: HashMap<ParticipantId, super::mesh::SignalBudget>,
    /// The room mixes its audio (`audio.mode = "mix"`), and its mix once started.
    pub audio_mix: bool,
    pub mix: Option<super::mix::RoomMix>,
}

impl Room {
    /// A room whose top-N audio forwards `top_n` speakers (when large enough).
    pub fn new(id: RoomId, top_n: usize) -> Self {
        Self {
            id,
            sid: String::new(),
            participants: HashMap::new(),
            remote: HashMap::new(),
            peer_nodes: HashSet::new(),
            relayed_to: HashMap::new(),
            awaiting_snapshots: HashSet::new(),
            viewers: HashMap::new(),
            speakers: sfu_core::ActiveSpeakers::new(),
            announced_speakers: Vec::new(),
            loudest: sfu_core::LoudestSpeakers::new(top_n),
            top_n_applies: false,
            held_back: HashSet::new(),
            topology: Default::default(),
            topology_review_at: None,
            signal_budgets: HashMap::new(),
            audio_mix: false,
            mix: None,
        }
    }

    /// `who`'s smoothed loudness, for the active speakers and top-N audio.
    pub fn set_level(&mut self, who: ParticipantId, level: f32) {
        self.loudest.update(who.clone(), level);
        self.speakers.update(who, level);
    }

    /// `who` left: no longer a speaker, and its top-N place is free.
    pub fn forget_speaker(&mut self, who: &ParticipantId) {
        self.speakers.remove(who);
        self.loudest.remove(who);
        self.held_back.remove(who);
    }

    /// Whether `publisher`'s audio is forwarded: always, unless top-N applies and it holds no place.
    pub fn audio_forwarded(&self, publisher: &ParticipantId) -> bool {
        !self.top_n_applies || self.loudest.is_selected(publisher)
    }

    /// Participants (and WHEP viewers) on every node.
    pub fn size(&self) -> usize {
        self.participants.len() + self.remote.len() + self.viewers.len()
    }

    /// The audio tracks of everyone who publishes audio, by publisher, as this node knows them
    /// (a remote one only once relayed here).
    pub fn audio_track_keys(&self) -> Vec<(ParticipantId, Vec<TrackKey>)> {
        let audio = sfu_proto::TrackKind::Audio;
        let local = self.participants.values().map(|p| {
            (p.id.clone(), p.tracks.iter().filter(|t| t.info.kind == audio).map(|t| t.key).collect::<Vec<_>>())
        });
        let remote = self.remote.values().map(|m| {
            let keys = m.tracks.iter().filter(|t| t.info.kind == audio).filter_map(|t| t.relay).collect::<Vec<_>>();
            (m.id().clone(), keys)
        });
        local.chain(remote).filter(|(_, keys)| !keys.is_empty()).collect()
    }

    pub fn by_identity(&self, identity: &str) -> Option<&Participant> {
        self.participants.values().find(|p| p.identity.as_str() == identity)
    }

    /// The track with this id and who publishes it.
    pub fn track(&self, id: &TrackId) -> Option<(&Participant, &TrackEntry)> {
        self.participants.values().find_map(|p| p.tracks.iter().find(|t| &t.info.id == id).map(|t| (p, t)))
    }

    /// A track by id, local or relayed from another node (only once it lands here): its
    /// publisher and entry.
    pub fn any_track(&self, id: &TrackId) -> Option<(ParticipantId, TrackEntry)> {
        if let Some((p, t)) = self.track(id) {
            return Some((p.id.clone(), t.clone()));
        }
        self.remote
            .values()
            .find_map(|m| m.tracks.iter().find(|t| &t.info.id == id).and_then(|t| Some((m.id().clone(), t.entry()?))))
    }

    /// The publisher and description of the track `key` names here, local or relayed.
    pub fn any_track_by_key(&self, key: TrackKey) -> Option<(ParticipantId, &TrackInfo)> {
        if let Some((p, t)) = self.track_by_key(key) {
            return Some((p.id.clone(), &t.info));
        }
        self.remote
            .values()
            .find_map(|m| m.tracks.iter().find(|t| t.relay == Some(key)).map(|t| (m.id().clone(), &t.info)))
    }

    pub fn track_by_key(&self, key: TrackKey) -> Option<(&Participant, &TrackEntry)> {
        self.participants.values().find_map(|p| p.tracks.iter().find(|t| t.key == key).map(|t| (p, t)))
    }

    /// Everyone in the room but `me`, on this node or another.
    pub fn others(&self, me: &ParticipantId) -> Vec<ParticipantInfo> {
        let local = self.participants.values().filter(|p| &p.id != me).map(Participant::info);
        local.chain(self.remote.values().map(RemoteMember::info)).collect()
    }

    /// To every local participant.
    pub fn broadcast(&self, message: &ServerMessage) {
        for p in self.participants.values() {
            p.send(message.clone());
        }
    }

    pub fn broadcast_except(&self, me: &ParticipantId, message: &ServerMessage) {
        for p in self.participants.values().filter(|p| &p.id != me) {
            p.send(message.clone());
        }
    }
}

/// Random ids with a readable prefix: `PA_...`, `TR_...`.
pub fn new_id(prefix: &str) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!("{prefix}_{}", Alphanumeric.sample_string(&mut rand::rng(), 12))
}
