//! One signaling WebSocket at `/rtc`: authenticate with the first message, then turn each
//! client message into a room operation. A malformed message gets an `error` reply and the
//! socket lives on; only auth failures, oversized messages and protocol violations close it.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use sfu_proto::{ClientMessage, CloseCode, ErrorCode, Identity, ParticipantId, RoomId, ServerMessage};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

use crate::auth::unix_time;
use crate::room::{Outgoing, ParticipantKind, RoomRef};
use crate::state::AppState;

/// A client that says nothing this long after connecting is disconnected.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session token stays valid; the room forgets the session much sooner anyway.
const SESSION_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

pub async fn run(socket: WebSocket, state: Arc<AppState>) {
    let (mut sink, mut stream) = socket.split();
    let limit = state.config.rtc.max_message_bytes;
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    // The writer owns the sink, so room events and replies share one ordered queue.
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outgoing::Message(m) => match serde_json::to_string(&m) {
                    Ok(text) => sink.send(Message::Text(text.into())).await,
                    Err(_) => continue,
                },
                Outgoing::Close(code, reason) => {
                    let _ =
                        sink.send(Message::Close(Some(CloseFrame { code: code.code(), reason: reason.into() }))).await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
        }
    });

    let first = tokio::time::timeout(JOIN_TIMEOUT, next_text(&mut stream, limit)).await;
    let joined = match first {
        Err(_) => Err((CloseCode::JoinTimeout, "no join within 10 s".to_owned())),
        Ok(Err(close_with)) => Err(close_with),
        Ok(Ok(text)) => match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Join { token }) => join(&state, &token, tx.clone()).await,
            Ok(ClientMessage::Resume { session_token }) => resume(&state, &session_token, tx.clone()).await,
            _ => Err((CloseCode::BadFirstMessage, "first message must be join or resume".to_owned())),
        },
    };
    let (room, id, generation) = match joined {
        Ok(joined) => joined,
        Err((code, reason)) => {
            tracing::info!(code = code.code(), %reason, "signaling connection refused");
            let _ = tx.send(Outgoing::Close(code, reason));
            drop(tx);
            let _ = writer.await;
            return;
        }
    };

    let mut left = false;
    loop {
        let text = match next_text(&mut stream, limit).await {
            Ok(text) => text,
            Err((code, reason)) => {
                if code == CloseCode::MessageTooBig {
                    let _ = tx.send(Outgoing::Close(code, reason));
                }
                break;
            }
        };
        let message = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Outgoing::Message(ServerMessage::Error {
                    code: ErrorCode::BadMessage,
                    message: format!("unreadable message: {e}"),
                    request: request_type(&text),
                }));
                continue;
            }
        };
        if matches!(message, ClientMessage::Leave) {
            left = true;
        }
        crate::handlers::handle(&state, &room, &id, generation, message, &tx).await;
        if left {
            break;
        }
    }
    if !left {
        state.hub.detach(room, id, generation);
    }
    drop(tx);
    let _ = writer.await;
}

/// The next text message, or the close code to end the session with.
async fn next_text(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    limit: usize,
) -> Result<String, (CloseCode, String)> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                if text.len() > limit {
                    return Err((CloseCode::MessageTooBig, format!("message over {limit} bytes")));
                }
                return Ok(text.to_string());
            }
            Some(Ok(Message::Binary(bytes))) => {
                if bytes.len() > limit {
                    return Err((CloseCode::MessageTooBig, format!("message over {limit} bytes")));
                }
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Err((CloseCode::Left, "closed".into())),
            Some(Err(e)) => return Err((CloseCode::ProtocolError, e.to_string())),
        }
    }
}

/// Best effort: the `type` field of a message we could not fully parse.
fn request_type(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

type Joined = (RoomRef, ParticipantId, u64);

async fn join(
    state: &Arc<AppState>,
    token: &str,
    tx: mpsc::UnboundedSender<Outgoing>,
) -> Result<Joined, (CloseCode, String)> {
    let now = unix_time(SystemTime::now());
    let claims = state.auth.verify(token, now).map_err(|e| (CloseCode::Unauthorized, format!("{}: {e}", e.code())))?;
    if !claims.grants.subscribe && !claims.grants.publish && !claims.grants.publish_data {
        return Err((CloseCode::NotAllowed, "token grants nothing in this room".into()));
    }
    let room_id = RoomId(claims.room.clone());
    let (room_ref, id) = state
        .hub
        .join(&room_id, Identity(claims.sub.clone()), claims.grants, ParticipantKind::Signaling, Some(tx.clone()))
        .await;
    let session_token = state.auth.issue_session(&claims, id.as_str(), SESSION_TOKEN_TTL, now);
    if !state.hub.welcome(&room_ref, &id, session_token, &tx).await {
        return Err((CloseCode::SessionNotFound, "replaced while joining".into()));
    }
    Ok((room_ref, id, 0))
}

async fn resume(
    state: &Arc<AppState>,
    token: &str,
    tx: mpsc::UnboundedSender<Outgoing>,
) -> Result<Joined, (CloseCode, String)> {
    let now = unix_time(SystemTime::now());
    // Any failure to resume means the same to the client: the session is gone, join again.
    let claims = state
        .auth
        .verify_session(token, now)
        .map_err(|e| (CloseCode::SessionNotFound, format!("session not found ({}: {e})", e.code())))?;
    let id = ParticipantId(claims.participant_id.clone());
    let (room_ref, generation) = state
        .hub
        .resume(&RoomId(claims.room.clone()), &id, tx)
        .await
        .ok_or_else(|| (CloseCode::SessionNotFound, "session not found or expired".to_owned()))?;
    Ok((room_ref, id, generation))
}
