//! Rooms and the operations on them. Each room sits behind its own async lock; every change to
//! a room (join, publish, subscribe, leave) runs under it, so the room's events reach each
//! participant in the order they happened.

mod attach;
mod drain;
mod limits;
mod media;
mod mesh;
mod mix;
mod model;
mod negotiate;
mod outbox;
mod peers_in;
mod peers_out;
mod publish;
mod relay;
mod relay_media;
mod remote;
mod request_error;
mod speakers;
mod top_n;
mod topology;
mod trickle;
mod viewers;

pub use limits::Limit;
pub use media::MediaControl;
pub use mesh::PeerSignal;
pub use model::*;
pub use outbox::{Frame, Outbox, OutboxReceiver, Outgoing, outbox};
pub use relay_media::RelayMedia;
pub use request_error::RequestError;
pub use topology::{Topology, TopologyPolicy};

/// Room settings a token may carry, honoured when its participant creates the room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomClaims {
    /// `auto`, `sfu` or `mesh` instead of `rooms.topology`.
    pub topology: Option<TopologySetting>,
    /// `forward` or `mix` instead of `audio.mode`.
    pub audio_mode: Option<crate::config::AudioMode>,
}

use parking_lot::Mutex;
use sfu_cluster::{AnyCluster, Cluster};
use sfu_proto::{CloseCode, ErrorCode, Identity, LeaveReason, ParticipantId, RoomId, ServerMessage, TopologySetting};
use sfu_transport::{ConnId, MediaPlane};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use crate::auth::Grants;
use crate::config::{AudioConfig, Limits, RoomsConfig};

pub type RoomRef = Arc<tokio::sync::Mutex<Room>>;

/// Every room on this node, plus the index from media connections back to their owners.
/// Generic over the media plane so the room logic can run against a stand-in in tests.
pub struct Hub<M = MediaPlane> {
    pub media: M,
    /// This node among others (or alone): room leases, and later the peers' rooms.
    pub cluster: AnyCluster,
    rooms: Mutex<HashMap<RoomId, RoomRef>>,
    conns: Mutex<HashMap<ConnId, (RoomId, ParticipantId)>>,
    /// WHEP viewers' connections: room and viewer session.
    viewer_conns: Mutex<HashMap<ConnId, (RoomId, String)>>,
    /// Media connections whose ICE and DTLS are up, as last reported by the media plane.
    connected: Mutex<HashSet<ConnId>>,
    departure_timeout: Duration,
    limits: Limits,
    /// Top-N audio in large rooms.
    audio: AudioConfig,
    /// Mesh or SFU (`[rooms]`).
    topology: RoomsConfig,
    /// Participants and WHEP viewers in every room, counted against `participants_per_node`
    /// (exactly: the rooms' own counts sit behind their locks).
    members: AtomicUsize,
    /// Shutting down: nobody new comes in (see `drain`).
    draining: AtomicBool,
    /// The media link to each linked peer node.
    links: Mutex<HashMap<sfu_cluster::NodeId, sfu_transport::LinkId>>,
    next_link: std::sync::atomic::AtomicU64,
    /// The STUN/TURN servers offered in `joined` and WHIP/WHEP answers; set once at start.
    ice_servers: std::sync::OnceLock<crate::ice_servers::IceServers>,
}

impl<M: MediaControl> Hub<M> {
    pub fn new(
        media: M,
        cluster: AnyCluster,
        departure_timeout: Duration,
        limits: Limits,
        audio: AudioConfig,
        rooms: RoomsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            media,
            cluster,
            rooms: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            viewer_conns: Mutex::new(HashMap::new()),
            connected: Mutex::new(HashSet::new()),
            departure_timeout,
            limits,
            audio,
            topology: rooms,
            members: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            links: Mutex::new(HashMap::new()),
            next_link: std::sync::atomic::AtomicU64::new(1),
            ice_servers: std::sync::OnceLock::new(),
        })
    }

    /// How large rooms carry audio (`[audio]`).
    pub fn audio_config(&self) -> &AudioConfig {
        &self.audio
    }

    /// Sets the STUN/TURN servers clients are offered (once, at start; later calls do nothing).
    pub fn set_ice_servers(&self, servers: crate::ice_servers::IceServers) {
        let _ = self.ice_servers.set(servers);
    }

    /// The servers offered to `identity`, TURN credentials minted now.
    pub fn ice_servers_for(&self, identity: &str) -> Vec<sfu_proto::IceServerInfo> {
        self.ice_servers.get().map(|s| s.for_identity(identity)).unwrap_or_default()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn departure_timeout(&self) -> Duration {
        self.departure_timeout
    }

    pub fn room(&self, id: &RoomId) -> Option<RoomRef> {
        self.rooms.lock().get(id).cloned()
    }

    /// The room with this name, made if there is none and the node has room for one more.
    fn room_or_create(&self, id: &RoomId) -> Result<RoomRef, RequestError> {
        let mut rooms = self.rooms.lock();
        if let Some(room) = rooms.get(id) {
            return Ok(room.clone());
        }
        self.check_new_room(rooms.len())?;
        tracing::info!(room = %id.escaped(), "room created");
        let mut room = Room::new(id.clone(), self.audio.top_n);
        // The node's setting, unless the token of a first participant with nobody on other nodes
        // claims another (join_with).
        room.audio_mix = self.audio.mode == crate::config::AudioMode::Mix;
        let room = Arc::new(tokio::sync::Mutex::new(room));
        rooms.insert(id.clone(), room.clone());
        metrics::gauge!("sfu_rooms").set(rooms.len() as f64);
        Ok(room)
    }

    /// Whether `room` is still the room registered under `id`. A room leaves the registry under
    /// its own lock, so with that lock held the answer stays true.
    fn is_open(&self, id: &RoomId, room: &RoomRef) -> bool {
        self.rooms.lock().get(id).is_some_and(|registered| Arc::ptr_eq(registered, room))
    }

    /// The room and participant owning a media connection.
    pub fn owner_of(&self, conn: ConnId) -> Option<(RoomId, ParticipantId)> {
        self.conns.lock().get(&conn).cloned()
    }

    pub fn set_connected(&self, conn: ConnId, up: bool) {
        let mut connected = self.connected.lock();
        if up {
            connected.insert(conn);
        } else {
            connected.remove(&conn);
        }
    }

    pub fn is_connected(&self, conn: ConnId) -> bool {
        self.connected.lock().contains(&conn)
    }

    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }

    /// Adds a participant to `room` (replacing one with the same identity), unless the room or
    /// the node is full (`room_full`, `node_full`) or the node is shutting down (`draining`).
    pub async fn join(
        self: &Arc<Self>,
        room_id: &RoomId,
        identity: Identity,
        grants: Grants,
        kind: ParticipantKind,
        outbox: Option<Outbox>,
    ) -> Result<(RoomRef, ParticipantId), RequestError> {
        self.join_with(room_id, identity, grants, kind, outbox, RoomClaims::default()).await
    }

    /// As [`Hub::join`], with the room settings the joiner's token asks for: they hold if this
    /// participant is the room's first (else the room keeps its own).
    pub async fn join_with(
        self: &Arc<Self>,
        room_id: &RoomId,
        identity: Identity,
        grants: Grants,
        kind: ParticipantKind,
        outbox: Option<Outbox>,
        claims: RoomClaims,
    ) -> Result<(RoomRef, ParticipantId), RequestError> {
        self.check_not_draining()?;
        let (room_ref, mut room) = loop {
            let room_ref = self.room_or_create(room_id)?;
            let room = room_ref.clone().lock_owned().await;
            // The last participant may have left while we waited for the lock, closing the
            // room: join the room that now has this name (a new one) instead.
            if self.is_open(room_id, &room_ref) {
                break (room_ref, room);
            }
        };
        let old = room.by_identity(identity.as_str()).map(|p| p.id.clone());
        if room.participants.is_empty() && room.remote.is_empty() {
            room.topology = Topology::new(self.topology_policy(claims.topology));
            room.audio_mix = claims.audio_mode.unwrap_or(self.audio.mode) == crate::config::AudioMode::Mix;
        }
        if let Err(refused) =
            self.check_mesh_place(&room, kind, old.is_some()).and_then(|()| self.take_place(&room, old.is_some()))
        {
            // A room made for this join closes again.
            self.close_if_empty(&room);
            return Err(refused);
        }
        let first_here = room.sid.is_empty();
        if first_here {
            // The room's first participant on this node: take its lease. Under the room's lock,
            // so everyone after it sees the sid; bounded (at most 300 ms in cluster mode).
            let lease = self.cluster.join_room(room_id).await;
            room.sid = lease.sid.0;
            let linked = self.cluster.linked_peers();
            room.awaiting_snapshots = lease.peers.into_iter().map(|l| l.node).filter(|n| linked.contains(n)).collect();
        }
        if let Some(old) = old {
            self.remove_participant(&mut room, &old, LeaveReason::Replaced).await;
        }
        let id = ParticipantId(new_id("PA"));
        let (publisher_conn, subscriber_conn) = self.media.allocate_conn_pair();
        let participant = Participant {
            id: id.clone(),
            identity: identity.clone(),
            grants,
            kind,
            tracks: Vec::new(),
            publisher_conn,
            subscriber_conn,
            outbox,
            joined_at_ms: self.cluster.clock_ms(),
            welcomed: false,
            generation: 0,
            negotiation: Negotiation::default(),
            settings: HashMap::new(),
            subscribed: Default::default(),
            has_subscriber_conn: false,
            trickled: Trickled::default(),
        };
        {
            let mut conns = self.conns.lock();
            conns.insert(participant.publisher_conn, (room_id.clone(), id.clone()));
            conns.insert(participant.subscriber_conn, (room_id.clone(), id.clone()));
        }
        room.broadcast_except(&id, &ServerMessage::ParticipantJoined { participant: participant.info() });
        room.participants.insert(id.clone(), participant);
        if kind == ParticipantKind::Signaling {
            room.topology.member_joined(id.clone());
        }
        self.review_topology(&mut room);
        self.announce_joined(&room, &id, first_here);
        tracing::info!(room = %room_id.escaped(), participant = %id, identity = %identity.escaped(), ?kind, "participant joined");
        self.update_gauges(&room);
        drop(room);
        Ok((room_ref, id))
    }

    /// Subscribes a newly joined (or resumed) participant to every track in the room.
    pub async fn subscribe_to_all(&self, room: &mut Room, id: &ParticipantId) {
        let tracks: Vec<(ParticipantId, TrackEntry)> = room
            .participants
            .values()
            .filter(|p| &p.id != id)
            .flat_map(|p| p.tracks.iter().map(|t| (p.id.clone(), t.clone())))
            .collect();
        for (publisher, track) in tracks {
            self.subscribe(room, id, &publisher, &track).await;
        }
        self.subscribe_to_remote(room, id).await;
        self.subscribe_to_mix(room, id).await;
        self.negotiate(room, id).await;
    }

    /// The socket of a participant went away: keep it for the departure timeout, then remove it.
    pub fn detach(self: &Arc<Self>, room_ref: RoomRef, id: ParticipantId, generation: u64) {
        let hub = self.clone();
        tokio::spawn(async move {
            {
                let mut room = room_ref.lock().await;
                let Some(p) = room.participants.get_mut(&id) else { return };
                if p.generation != generation {
                    return;
                }
                p.outbox = None;
                tracing::info!(room = %room.id.escaped(), participant = %id, "socket gone; waiting for resume");
            }
            tokio::time::sleep(hub.departure_timeout).await;
            let mut room = room_ref.lock().await;
            let stale = room.participants.get(&id).is_some_and(|p| p.generation == generation && p.outbox.is_none());
            if stale {
                hub.remove_participant(&mut room, &id, LeaveReason::Timeout).await;
            }
        });
    }

    /// Removes a participant: closes its connections, unsubscribes everyone from its tracks and
    /// tells the room.
    pub async fn remove_participant(&self, room: &mut Room, id: &ParticipantId, reason: LeaveReason) {
        let Some(gone) = room.participants.remove(id) else { return };
        room.topology.member_left(id);
        room.signal_budgets.remove(id);
        self.give_back_place();
        self.media.close(gone.publisher_conn);
        self.media.close(gone.subscriber_conn);
        {
            let mut conns = self.conns.lock();
            conns.remove(&gone.publisher_conn);
            conns.remove(&gone.subscriber_conn);
        }
        self.set_connected(gone.publisher_conn, false);
        self.set_connected(gone.subscriber_conn, false);
        self.unpublish_tracks(room, &gone.id, &gone.tracks).await;
        room.forget_speaker(&gone.id);
        self.announce_speakers(room);
        room.broadcast_except(
            id,
            &ServerMessage::ParticipantLeft {
                participant_id: gone.id.clone(),
                identity: gone.identity.clone(),
                reason,
            },
        );
        self.announce_left(room, id, reason);
        if let Some(outbox) = &gone.outbox {
            let (code, text) = match reason {
                LeaveReason::Replaced => (CloseCode::Replaced, "replaced by a newer session"),
                LeaveReason::Removed => (CloseCode::Removed, "removed from the room"),
                LeaveReason::Left | LeaveReason::Timeout => (CloseCode::Left, "left"),
                LeaveReason::Shutdown => (CloseCode::GoingAway, "the server is shutting down"),
            };
            let _ = outbox.send(Outgoing::Close(code, text.into()));
        }
        tracing::info!(room = %room.id.escaped(), participant = %id, ?reason, "participant left");
        self.review_topology(room);
        self.update_gauges(room);
        // A replaced participant's successor joins this room right after: it stays open.
        if reason != LeaveReason::Replaced {
            self.close_if_empty(room);
        }
    }

    /// Unregisters `room` once nobody is in it. Rooms close only on becoming empty, under their
    /// lock, and nobody joins a closed room (see `join`), so the room registered under this
    /// name is this one.
    fn close_if_empty(&self, room: &Room) {
        if room.participants.is_empty() && room.viewers.is_empty() {
            let mut rooms = self.rooms.lock();
            rooms.remove(&room.id);
            metrics::gauge!("sfu_rooms").set(rooms.len() as f64);
            if !room.sid.is_empty() {
                self.cluster.leave_room(&room.id, !room.peer_nodes.is_empty());
                self.announce_closed(&room.id);
            }
            self.end_mix(room);
            for member in room.remote.values() {
                let relays: Vec<_> = member.tracks.iter().filter_map(|t| Some((t.info.id.clone(), t.relay?))).collect();
                self.drop_relays(&room.id, &member.node, &relays, true);
            }
            tracing::info!(room = %room.id.escaped(), "room closed");
        }
    }

    /// The topology rules of a new room: the creator's claim, else `rooms.topology`.
    fn topology_policy(&self, claim: Option<TopologySetting>) -> TopologyPolicy {
        TopologyPolicy {
            setting: claim.unwrap_or(self.topology.topology),
            max_members: self.topology.mesh_max_participants,
            hysteresis: self.topology.mesh_hysteresis(),
        }
    }

    /// A forced mesh takes no more than its most members, and no WHIP publisher (which cannot
    /// take part in a mesh). Replacing a member's session is always allowed.
    fn check_mesh_place(&self, room: &Room, kind: ParticipantKind, replacing: bool) -> Result<(), RequestError> {
        if replacing || room.topology.policy().setting != TopologySetting::Mesh {
            return Ok(());
        }
        if kind != ParticipantKind::Signaling {
            return Err(RequestError::new(ErrorCode::MeshFull, "the room is a mesh: it takes no WHIP publishers"));
        }
        if room.topology.refuses_more() {
            let max = room.topology.policy().max_members;
            return Err(RequestError::new(
                ErrorCode::MeshFull,
                format!("the room is a mesh of at most {max} participants"),
            ));
        }
        Ok(())
    }

    pub(crate) fn update_gauges(&self, room: &Room) {
        // Per-node totals are recomputed from the rooms we can see without awaiting others.
        let _ = room;
        let rooms = self.rooms.lock();
        let (mut participants, mut tracks) = (0usize, 0usize);
        for r in rooms.values() {
            if let Ok(r) = r.try_lock() {
                participants += r.participants.len();
                tracks += r.participants.values().map(|p| p.tracks.len()).sum::<usize>();
            }
        }
        participants += room.participants.len();
        tracks += room.participants.values().map(|p| p.tracks.len()).sum::<usize>();
        metrics::gauge!("sfu_participants").set(participants as f64);
        metrics::gauge!("sfu_tracks").set(tracks as f64);
    }
}

#[cfg(test)]
mod fake_media;
#[cfg(test)]
mod tests;
