//! The shell around the room's [`Topology`]: feeds it the room's changes with the time, tells
//! the participants when the topology changes, wakes it when its hysteresis ends, and relays
//! `peer_signal` between the members of a mesh (docs/topologies.md, "Mesh").

use sfu_proto::{
    ErrorCode, IceCandidate, MAX_MESH_TRACKS, MeshTrack, ParticipantId, ServerMessage, SessionDescription, TopologyMode,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Hub, MediaControl, ParticipantKind, RequestError, Room, RoomRef};

/// Relayed `peer_signal` messages a participant may send at once: a negotiation with a few
/// peers is an offer, an answer and a dozen candidates each.
const SIGNAL_BURST: f64 = 100.0;
/// And per second, sustained (renegotiations and ICE restarts are rare).
const SIGNALS_PER_SECOND: f64 = 20.0;

/// A token bucket for one participant's relayed signals.
#[derive(Clone, Copy, Debug)]
pub struct SignalBudget {
    tokens: f64,
    at: Instant,
}

impl SignalBudget {
    pub fn new(now: Instant) -> Self {
        SignalBudget { tokens: SIGNAL_BURST, at: now }
    }

    /// Takes one message's worth; false when the participant is over its rate.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * SIGNALS_PER_SECOND).min(SIGNAL_BURST);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// One relayed signal, as the sender wrote it.
pub struct PeerSignal {
    pub to: ParticipantId,
    /// The connection it is for, as `topology` numbered it (`None`: the sender did not say).
    pub connection: Option<u64>,
    pub description: Option<SessionDescription>,
    pub candidate: Option<IceCandidate>,
    pub tracks: Vec<MeshTrack>,
    /// A switch note: the path the sender shows the recipient's media from now.
    pub moved: Option<TopologyMode>,
}

impl Room {
    /// Whether someone is here who cannot take part in a mesh: a WHIP publisher, a WHEP viewer,
    /// a participant on another node (a mesh never spans nodes).
    fn blocks_mesh(&self) -> bool {
        !self.remote.is_empty()
            || !self.viewers.is_empty()
            || self.participants.values().any(|p| p.kind != ParticipantKind::Signaling)
    }

    /// Reviews the topology at `now`, tells everyone if it changed; returns when to review again.
    pub fn review_topology(&mut self, now: Instant) -> Option<Instant> {
        let blocked = self.blocks_mesh();
        if self.topology.review(now, blocked) {
            let mode = self.topology.mode();
            let to = if mode == TopologyMode::Mesh { "mesh" } else { "sfu" };
            metrics::counter!("sfu_topology_switches_total", "to" => to).increment(1);
            tracing::info!(room = %self.id.escaped(), ?mode, members = self.participants.len(), "room topology");
            for p in self.participants.values() {
                p.send(self.topology_message(&p.id));
            }
        }
        self.topology.poll_timeout()
    }

    /// The `topology` message for one participant.
    pub fn topology_message(&self, to: &ParticipantId) -> ServerMessage {
        ServerMessage::Topology { mode: self.topology.mode(), peers: self.topology.peers_for(to) }
    }
}

impl<M: MediaControl> Hub<M> {
    /// Reviews `room`'s topology after a change, and arranges to review it again when its
    /// hysteresis ends.
    pub(super) fn review_topology(&self, room: &mut Room) {
        let Some(at) = room.review_topology(Instant::now()) else { return };
        if room.topology_review_at == Some(at) {
            return;
        }
        room.topology_review_at = Some(at);
        if let Some(room_ref) = self.room(&room.id) {
            review_later(&room_ref, at);
        }
    }

    /// Relays a mesh peer's description or candidate to another member of the same mesh, or
    /// its switch note (`moved`) to another participant of the room, in either mode.
    pub fn relay_peer_signal(
        &self,
        room: &mut Room,
        from: &ParticipantId,
        signal: PeerSignal,
    ) -> Result<(), RequestError> {
        let negotiates = signal.description.is_some() || signal.candidate.is_some();
        if !negotiates && signal.moved.is_none() {
            return Err(RequestError::new(
                ErrorCode::BadMessage,
                "peer_signal carries neither a description, a candidate nor a switch note",
            ));
        }
        if signal.tracks.len() > MAX_MESH_TRACKS {
            return Err(RequestError::new(
                ErrorCode::BadMessage,
                format!("peer_signal lists more than {MAX_MESH_TRACKS} tracks"),
            ));
        }
        let connection = if negotiates {
            Some(mesh_connection(room, from, &signal)?)
        } else {
            // A note only says which path the sender shows now: it also goes after a switch
            // to the SFU (the recipient closes its mesh connection on it), so any other
            // participant of the room may get one; the recipient checks the number.
            let to_participant =
                room.participants.get(&signal.to).is_some_and(|p| p.kind == ParticipantKind::Signaling);
            if signal.to == *from || !to_participant {
                return Err(RequestError::new(
                    ErrorCode::UnknownPeer,
                    format!("{} is not another participant of the room", signal.to),
                ));
            }
            signal.connection
        };
        let now = Instant::now();
        let budget = room.signal_budgets.entry(from.clone()).or_insert_with(|| SignalBudget::new(now));
        if !budget.take(now) {
            metrics::counter!("sfu_peer_signals_refused_total").increment(1);
            return Err(RequestError::new(
                ErrorCode::RateLimited,
                format!("over {SIGNALS_PER_SECOND} relayed peer signals per second"),
            ));
        }
        let Some(peer) = room.participants.get(&signal.to) else {
            return Err(RequestError::new(ErrorCode::UnknownPeer, format!("{} is not in the room", signal.to)));
        };
        peer.send(ServerMessage::PeerSignal {
            from: from.clone(),
            connection,
            description: signal.description,
            candidate: signal.candidate,
            tracks: signal.tracks,
            moved: signal.moved,
        });
        metrics::counter!("sfu_peer_signals_relayed_total").increment(1);
        Ok(())
    }
}

/// The number of the mesh connection a description or candidate is for: the room must be a
/// mesh with both as members, and the sender's number, when given, the current one.
fn mesh_connection(room: &Room, from: &ParticipantId, signal: &PeerSignal) -> Result<u64, RequestError> {
    if room.topology.mode() != TopologyMode::Mesh {
        return Err(RequestError::new(ErrorCode::NotMesh, "the room is not a mesh now: send media to the server"));
    }
    let Some(connection) = room.topology.connection(from, &signal.to) else {
        return Err(RequestError::new(
            ErrorCode::UnknownPeer,
            format!("{} is not another member of your mesh", signal.to),
        ));
    };
    if signal.connection.is_some_and(|c| c != connection) {
        // Sent on a connection a later `topology` replaced: applied to the new one, an old
        // description or candidate would break it.
        metrics::counter!("sfu_peer_signals_refused_total").increment(1);
        return Err(RequestError::new(
            ErrorCode::StaleSignal,
            format!("the connection to {} is number {connection} now", signal.to),
        ));
    }
    Ok(connection)
}

/// Reviews the room again at `at` (and after, while it keeps asking), unless a later schedule
/// took over.
fn review_later(room_ref: &RoomRef, at: Instant) {
    let room = Arc::downgrade(room_ref);
    tokio::spawn(async move {
        let mut at = at;
        loop {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at) + Duration::from_millis(1)).await;
            let Some(room_ref) = room.upgrade() else { return };
            let mut room = room_ref.lock().await;
            if room.topology_review_at != Some(at) {
                return;
            }
            room.topology_review_at = None;
            let Some(next) = room.review_topology(Instant::now()) else { return };
            room.topology_review_at = Some(next);
            at = next;
        }
    });
}
