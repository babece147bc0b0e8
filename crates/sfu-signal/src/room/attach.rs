//! A signaling socket attaching to its participant: the welcome after a join, and a resume
//! after the socket dropped.

use sfu_proto::{PROTOCOL_VERSION, ParticipantId, RoomId, ServerMessage};

use super::{Hub, MediaControl, Outbox, Outgoing, RoomRef};

/// How long the first participant of a room here waits for the other nodes' snapshots.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
const SNAPSHOT_POLL: std::time::Duration = std::time::Duration::from_millis(10);

impl<M: MediaControl> Hub<M> {
    /// Tells a participant that just joined who is in the room and subscribes it to what they
    /// publish. False if it was replaced (or removed) before it could be welcomed.
    pub async fn welcome(&self, room_ref: &RoomRef, id: &ParticipantId, session_token: String, tx: &Outbox) -> bool {
        // The room's other nodes answer its first participant here with who they hold: wait a
        // moment for them, so `joined` lists everyone (later answers come as participant_joined).
        let until = tokio::time::Instant::now() + SNAPSHOT_WAIT;
        while !room_ref.lock().await.awaiting_snapshots.is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(SNAPSHOT_POLL).await;
        }
        let mut room = room_ref.lock().await;
        room.awaiting_snapshots.clear();
        let Some(me) = room.participants.get(id) else { return false };
        let _ = tx.send(Outgoing::Message(ServerMessage::Joined {
            protocol: PROTOCOL_VERSION,
            room: room.id.clone(),
            participant: me.info(),
            session_token,
            participants: room.others(id),
            departure_timeout_ms: self.departure_timeout().as_millis() as u64,
            room_sid: room.sid.clone(),
            ice_servers: self.ice_servers_for(me.identity.as_str()),
        }));
        if let Some(me) = room.participants.get_mut(id) {
            me.welcomed = true;
        }
        if room.topology.announces() {
            let _ = tx.send(Outgoing::Message(room.topology_message(id)));
        }
        if !room.announced_speakers.is_empty() {
            let speakers = room.announced_speakers.clone();
            let _ = tx.send(Outgoing::Message(ServerMessage::ActiveSpeakers { speakers }));
        }
        self.subscribe_to_all(&mut room, id).await;
        true
    }

    /// Attaches a new socket to a participant still in its room; returns the room and the
    /// socket's generation, or `None` if the session is gone.
    pub async fn resume(&self, room_id: &RoomId, id: &ParticipantId, tx: Outbox) -> Option<(RoomRef, u64)> {
        let room_ref = self.room(room_id)?;
        let mut room = room_ref.lock().await;
        let others = room.others(id);
        let p = room.participants.get_mut(id)?;
        if let Some(old) = p.outbox.replace(tx.clone()) {
            let _ = old.send(Outgoing::Close(sfu_proto::CloseCode::Replaced, "resumed elsewhere".into()));
        }
        p.generation += 1;
        let generation = p.generation;
        // Whatever offer was in flight died with the old socket: offer again, restarting ICE only
        // if the media path broke too.
        p.negotiation.awaiting_answer = false;
        p.negotiation.ice_restart = !self.is_connected(p.subscriber_conn);
        p.negotiation.needs_offer = true;
        let _ = tx.send(Outgoing::Message(ServerMessage::Resumed { participant: p.info(), participants: others }));
        if room.topology.announces() {
            let _ = tx.send(Outgoing::Message(room.topology_message(id)));
        }
        let p = room.participants.get_mut(id)?;
        // Dynacast messages sent while the socket was away were lost with its queue.
        for track in &p.tracks {
            if let Some(layers) = &track.encoding {
                p.send(ServerMessage::PublisherLayers { track_id: track.info.id.clone(), layers: layers.clone() });
            }
        }
        tracing::info!(room = %room.id.escaped(), participant = %id, "session resumed");
        self.subscribe_to_all(&mut room, id).await;
        drop(room);
        Some((room_ref, generation))
    }
}
