//! What other nodes tell this one about rooms it holds: their participants, tracks, mutes, data
//! messages and audio levels, applied to the local room and passed on to its local participants
//! as if they happened here. Messages about rooms this node does not hold are dropped: a node
//! that takes a room later asks for a snapshot (`RoomHello`).

use sfu_cluster::mesh::{PeerMessage, RemoteParticipant};
use sfu_cluster::{Cluster, NodeId};
use sfu_proto::{LeaveReason, ParticipantId, RoomId, ServerMessage};

use super::{Hub, MediaControl, RemoteMember, RemoteTrack, Room};

impl<M: MediaControl> Hub<M> {
    /// Applies one message from peer node `from`.
    pub async fn on_peer_message(&self, from: NodeId, message: PeerMessage) {
        let Some(room_id) = message_room(&message) else { return };
        let Some(room_ref) = self.room(room_id) else { return };
        let mut room = room_ref.lock().await;
        match message {
            PeerMessage::RoomHello { participants, reply, .. } => {
                room.peer_nodes.insert(from.clone());
                room.awaiting_snapshots.remove(&from);
                self.sync_remote(&mut room, &from, participants).await;
                if !reply {
                    self.cluster_send(&from, self.room_hello(&room, true));
                }
            }
            PeerMessage::ParticipantJoined { participant, .. } => {
                room.peer_nodes.insert(from.clone());
                self.add_remote(&mut room, &from, participant).await;
            }
            PeerMessage::ParticipantLeft { participant, reason, .. } => {
                self.remove_remote(&mut room, &from, &participant, reason).await;
            }
            PeerMessage::TrackPublished { participant, info, mime, clock_rate, .. } => {
                let Some(member) = room.remote.get_mut(&participant).filter(|m| m.node == from) else { return };
                let id = info.id.clone();
                member.put_track(RemoteTrack::new(info.clone(), mime, clock_rate));
                let published = ServerMessage::TrackPublished { participant_id: participant.clone(), track: info };
                room.broadcast(&published);
                self.subscribe_remote(&mut room, &participant, &id).await;
            }
            PeerMessage::TrackUnpublished { participant, track, .. } => {
                let Some(member) = room.remote.get_mut(&participant).filter(|m| m.node == from) else { return };
                if let Some(gone) = member.remove_track(&track) {
                    self.withdraw_remote_track(&mut room, &from, &participant, gone, false).await;
                }
            }
            PeerMessage::TrackMuted { track, muted, .. } => {
                let owner =
                    room.remote.values_mut().find(|m| m.node == from && m.info.tracks.iter().any(|t| t.id == track));
                let Some(member) = owner else { return };
                member.set_muted(&track, muted);
                if let Some(key) = member.tracks.iter().find(|t| t.info.id == track).and_then(|t| t.relay) {
                    self.media.set_muted(key, muted);
                }
                let participant_id = member.id().clone();
                room.broadcast(&ServerMessage::TrackMuted { participant_id, track_id: track, muted });
            }
            PeerMessage::Data { from: sender, text, payload, .. } => {
                let Some(member) = room.remote.get(&sender).filter(|m| m.node == from) else { return };
                let identity = member.info.identity.clone();
                self.deliver_remote_data(&room, identity.as_str(), &sender, text, &payload);
            }
            PeerMessage::Levels { levels, .. } => {
                for (who, level) in levels {
                    if room.remote.get(&who).is_some_and(|m| m.node == from) {
                        room.set_level(who, f32::from(level.min(127)) / 127.0);
                    }
                }
                self.announce_speakers(&mut room);
            }
            PeerMessage::RoomBye { .. } => {
                room.peer_nodes.remove(&from);
                self.remove_remote_of(&mut room, &from, LeaveReason::Left).await;
            }
            PeerMessage::Subscribe { track, dest, ssrcs, .. } => {
                self.on_subscribe(&mut room, &from, &track, dest, ssrcs).await;
            }
            PeerMessage::Unsubscribe { track, .. } => self.on_unsubscribe(&mut room, &from, &track),
            PeerMessage::LinkLayers { track, used, wanted, .. } => {
                self.on_link_layers(&room, &from, &track, &used, wanted)
            }
            PeerMessage::LayersActive { track, layers, .. } => self.on_layers_active(&room, &from, &track, &layers),
            _ => {}
        }
    }

    /// A peer node is gone (its link dropped and did not come back): its participants have left
    /// every room here.
    pub async fn on_peer_down(&self, node: &NodeId) {
        for room_ref in self.all_rooms() {
            let mut room = room_ref.lock().await;
            room.peer_nodes.remove(node);
            self.remove_remote_of(&mut room, node, LeaveReason::Timeout).await;
        }
    }

    /// A link to `node` came up: tell it who is here in every room (it does the same), so rooms
    /// held on both sides merge.
    pub async fn on_peer_up(&self, node: &NodeId) {
        for room_ref in self.all_rooms() {
            let room = room_ref.lock().await;
            if !room.participants.is_empty() {
                self.cluster_send(node, self.room_hello(&room, true));
            }
        }
    }

    /// Replaces what the room knows of `node`'s participants by its snapshot.
    async fn sync_remote(&self, room: &mut Room, node: &NodeId, snapshot: Vec<RemoteParticipant>) {
        let listed: Vec<ParticipantId> = snapshot.iter().map(|p| p.info.id.clone()).collect();
        let gone: Vec<ParticipantId> = room
            .remote
            .values()
            .filter(|m| &m.node == node && !listed.contains(m.id()))
            .map(|m| m.id().clone())
            .collect();
        for id in gone {
            self.remove_remote(room, node, &id, LeaveReason::Left).await;
        }
        for participant in snapshot {
            self.add_remote(room, node, participant).await;
        }
    }

    /// A participant of `node` joined, or was listed again: announce it (or what changed of its
    /// tracks), and give way if it is the newer session of a local participant's identity.
    async fn add_remote(&self, room: &mut Room, node: &NodeId, participant: RemoteParticipant) {
        let id = participant.info.id.clone();
        let tracks = participant.info.tracks.clone();
        let media = participant.media.clone();
        let identity = participant.info.identity.clone();
        let joined_at = participant.joined_at_ms;
        let known = room.remote.contains_key(&id);
        if !known {
            if room.participants.contains_key(&id) || self.room_is_full_for_remote(room) {
                return;
            }
            let member = RemoteMember::new(node.clone(), participant);
            room.broadcast_except(&id, &ServerMessage::ParticipantJoined { participant: member.info() });
            room.remote.insert(id.clone(), member);
            self.review_topology(room);
            tracing::info!(room = %room.id.escaped(), participant = %id, %node, "remote participant joined");
        }
        // Tracks: announce those not known yet, withdraw those no longer listed.
        let Some(member) = room.remote.get_mut(&id) else { return };
        let mut published = Vec::new();
        let mut unpublished = Vec::new();
        for info in &tracks {
            let codec = media.iter().find(|m| m.track == info.id);
            let (mime, clock_rate) = codec.map(|c| (c.mime.clone(), c.clock_rate)).unwrap_or_default();
            let fresh = !member.info.tracks.iter().any(|t| t.id == info.id);
            member.put_track(RemoteTrack::new(info.clone(), mime, clock_rate));
            if fresh {
                published.push(info.clone());
            }
        }
        for old in member.info.tracks.clone() {
            if !tracks.iter().any(|t| t.id == old.id)
                && let Some(gone) = member.remove_track(&old.id)
            {
                unpublished.push(gone);
            }
        }
        for gone in unpublished {
            self.withdraw_remote_track(room, node, &id, gone, false).await;
        }
        for track in published {
            let track_id = track.id.clone();
            room.broadcast_except(&id, &ServerMessage::TrackPublished { participant_id: id.clone(), track });
            self.subscribe_remote(room, &id, &track_id).await;
        }
        // One identity, two nodes: the newer session wins; each node removes its own loser.
        let local = room.by_identity(identity.as_str()).map(|p| (p.joined_at_ms, p.id.clone()));
        if let Some((local_joined_at, local_id)) = local {
            let mine = (local_joined_at, self.cluster.node().node.clone(), local_id.clone());
            let theirs = (joined_at, node.clone(), id.clone());
            if mine < theirs {
                tracing::info!(room = %room.id.escaped(), participant = %local_id, newer = %id, %node, "identity joined again on another node");
                self.remove_participant(room, &local_id, LeaveReason::Replaced).await;
            }
        }
    }

    async fn remove_remote(&self, room: &mut Room, node: &NodeId, id: &ParticipantId, reason: LeaveReason) {
        if room.remote.get(id).is_none_or(|m| &m.node != node) {
            return;
        }
        let Some(gone) = room.remote.remove(id) else { return };
        self.review_topology(room);
        for track in gone.tracks {
            self.withdraw_remote_track(room, node, id, track, false).await;
        }
        room.forget_speaker(id);
        self.announce_speakers(room);
        room.broadcast_except(
            id,
            &ServerMessage::ParticipantLeft { participant_id: id.clone(), identity: gone.info.identity, reason },
        );
        tracing::info!(room = %room.id.escaped(), participant = %id, %node, ?reason, "remote participant left");
    }

    /// A remote track is gone: its subscriptions here go with its relay track, and the room
    /// hears of it.
    async fn withdraw_remote_track(
        &self,
        room: &mut Room,
        node: &NodeId,
        publisher: &ParticipantId,
        track: RemoteTrack,
        tell_origin: bool,
    ) {
        match track.entry() {
            Some(entry) => {
                self.withdraw_tracks(room, publisher, std::slice::from_ref(&entry)).await;
                self.drop_relays(&room.id, node, &[(entry.info.id, entry.key)], tell_origin);
            }
            None => room.broadcast_except(
                publisher,
                &ServerMessage::TrackUnpublished { participant_id: publisher.clone(), track_id: track.info.id },
            ),
        }
    }

    /// A data message of a participant on another node, for this node's participants of the
    /// room (its node checked and rate-limited it).
    fn deliver_remote_data(&self, room: &Room, identity: &str, sender: &ParticipantId, text: bool, payload: &[u8]) {
        if payload.len() > sfu_transport::DATA_MAX_MESSAGE_BYTES {
            return;
        }
        let Some(envelope) = crate::data_envelope::envelope(identity, sender.as_str(), text, payload) else { return };
        for p in room.participants.values() {
            self.media.send_data(p.publisher_conn, true, envelope.clone());
        }
        metrics::counter!("sfu_data_messages_total").increment(1);
    }

    async fn remove_remote_of(&self, room: &mut Room, node: &NodeId, reason: LeaveReason) {
        let ids: Vec<ParticipantId> =
            room.remote.values().filter(|m| &m.node == node).map(|m| m.id().clone()).collect();
        for id in ids {
            self.remove_remote(room, node, &id, reason).await;
        }
    }

    /// `limits.participants_per_room` counts everyone in the room, wherever connected; a room
    /// already full here shows no more remote participants (their nodes refused nobody, so this
    /// only happens when two nodes admit the last place at once).
    fn room_is_full_for_remote(&self, room: &Room) -> bool {
        room.participants.len() + room.remote.len() >= self.limits().participants_per_room
    }
}

fn message_room(message: &PeerMessage) -> Option<&RoomId> {
    match message {
        PeerMessage::RoomHello { room, .. }
        | PeerMessage::ParticipantJoined { room, .. }
        | PeerMessage::ParticipantLeft { room, .. }
        | PeerMessage::TrackPublished { room, .. }
        | PeerMessage::TrackUnpublished { room, .. }
        | PeerMessage::TrackMuted { room, .. }
        | PeerMessage::Data { room, .. }
        | PeerMessage::Levels { room, .. }
        | PeerMessage::Subscribe { room, .. }
        | PeerMessage::Unsubscribe { room, .. }
        | PeerMessage::LinkLayers { room, .. }
        | PeerMessage::LayersActive { room, .. }
        | PeerMessage::RoomBye { room } => Some(room),
        _ => None,
    }
}
