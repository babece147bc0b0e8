//! What each client message does once a session is joined.

use sfu_proto::{ClientMessage, ErrorCode, LeaveReason, ParticipantId, ServerMessage};
use std::sync::Arc;

use crate::room::{Outbox, Outgoing, RequestError, RoomRef};
use crate::state::AppState;

pub async fn handle(
    state: &Arc<AppState>,
    room_ref: &RoomRef,
    id: &ParticipantId,
    generation: u64,
    message: ClientMessage,
    tx: &Outbox,
) {
    let request = request_name(&message);
    let hub = &state.hub;
    let mut room = room_ref.lock().await;
    match room.participants.get(id) {
        None => {
            let _ = tx.send(Outgoing::Close(sfu_proto::CloseCode::SessionNotFound, "session ended".into()));
            return;
        }
        // A newer socket resumed this session; this one only lingers until it closes.
        Some(p) if p.generation != generation => return,
        Some(_) => {}
    }
    let result: Result<(), RequestError> = match message {
        ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
            Err(RequestError::new(ErrorCode::AlreadyJoined, "this session has already joined"))
        }
        ClientMessage::Offer { sdp, tracks } => hub.publisher_offer(&mut room, id, sdp, tracks).await.map(|_| ()),
        ClientMessage::Answer { sdp } => hub.subscriber_answer(&mut room, id, sdp).await,
        ClientMessage::Candidate { target, candidate } => hub.remote_candidate(&mut room, id, target, candidate).await,
        ClientMessage::Subscription(settings) => hub.set_subscription(&mut room, id, settings),
        ClientMessage::Mute { track_id, muted } => hub.set_muted(&mut room, id, &track_id, muted),
        ClientMessage::Ping { id: ping } => {
            let _ = tx.send(Outgoing::Message(ServerMessage::Pong { id: ping }));
            Ok(())
        }
        ClientMessage::PeerSignal { to, connection, description, candidate, tracks, moved } => {
            let signal = crate::room::PeerSignal { to, connection, description, candidate, tracks, moved };
            hub.relay_peer_signal(&mut room, id, signal)
        }
        ClientMessage::Leave => {
            hub.remove_participant(&mut room, id, LeaveReason::Left).await;
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::debug!(room = %room.id.escaped(), participant = %id, request, code = ?e.code, error = %e.message, "request failed");
        let _ = tx.send(Outgoing::Message(ServerMessage::Error {
            code: e.code,
            message: e.message,
            request: Some(request.to_owned()),
        }));
    }
}

fn request_name(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Join { .. } => "join",
        ClientMessage::Resume { .. } => "resume",
        ClientMessage::Offer { .. } => "offer",
        ClientMessage::Answer { .. } => "answer",
        ClientMessage::Candidate { .. } => "candidate",
        ClientMessage::Subscription(_) => "subscription",
        ClientMessage::Mute { .. } => "mute",
        ClientMessage::Ping { .. } => "ping",
        ClientMessage::Leave => "leave",
        ClientMessage::PeerSignal { .. } => "peer_signal",
    }
}
