//! One signaling WebSocket at `/rtc`: authenticate with the first message, then turn each
//! client message into a room operation. A malformed message gets an `error` reply and the
//! socket lives on; only auth failures, oversized messages and protocol violations close it.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sfu_proto::{ClientMessage, CloseCode, ErrorCode, Identity, ParticipantId, RoomId, ServerMessage};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::unix_time;
use crate::room::{Frame, Outbox, OutboxReceiver, Outgoing, ParticipantKind, RoomRef, outbox};
use crate::state::AppState;

/// A client that says nothing this long after connecting is disconnected.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session token stays valid; the room forgets the session much sooner anyway.
const SESSION_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// A write to the socket that takes longer than this means the client stopped reading. (A
/// constant, not a config key: the config is being reworked separately.)
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a too-slow client gets to read its close frame before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub async fn run(socket: WebSocket, state: Arc<AppState>) {
    let (sink, mut stream) = socket.split();
    let limit = state.config.rtc.max_message_bytes;
    // Until its first message a socket holds little more than itself: the outgoing queue, the
    // writer task and the session's own state (a large future, boxed apart) come with the
    // message, so sockets that idle before joining cost the server little memory.
    let first = tokio::time::timeout(JOIN_TIMEOUT, next_text(&mut stream, limit)).await;
    Box::pin(session(sink, stream, first, state)).await;
}

type First = Result<Result<String, (CloseCode, String)>, tokio::time::error::Elapsed>;

/// The session from its first message (or the lack of one) on.
async fn session(
    sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    first: First,
    state: Arc<AppState>,
) {
    let limit = state.config.rtc.max_message_bytes;
    let (tx, rx) = outbox();
    // The writer owns the sink, so room events and replies share one ordered queue.
    let mut writer = tokio::spawn(write(sink, rx));
    let joined = match first {
        Err(_) => Err((CloseCode::JoinTimeout, "no join within 10 s".to_owned())),
        Ok(Err(close_with)) => Err(close_with),
        Ok(Ok(text)) => match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Join { token, redirects }) => join(&state, &token, redirects, tx.clone()).await,
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
    let mut writer_done = false;
    loop {
        let next = tokio::select! {
            next = async {
                tx.room_for_replies().await;
                next_text(&mut stream, limit).await
            } => next,
            // The writer gave up on a client too slow to read (or a broken socket): end the session.
            _ = &mut writer => {
                writer_done = true;
                break;
            }
        };
        let text = match next {
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
    if writer_done {
        // The writer closed the socket. Read on until the client answers the close (or for
        // CLOSE_GRACE): closing with its messages unread would reset the connection, and the
        // reset would discard the close frame before the client reads it.
        let drain = async { while next_text(&mut stream, limit).await.is_ok() {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    } else {
        let _ = writer.await;
    }
}

/// Writes the queue to the socket until it closes. A client that stops reading is disconnected
/// with `too_slow`: when its queue overflows, or when one write takes longer than `SEND_TIMEOUT`.
async fn write(mut sink: SplitSink<WebSocket, Message>, mut rx: OutboxReceiver) {
    let overflow = rx.overflow();
    let too_slow = loop {
        let frame = tokio::select! {
            biased;
            _ = overflow.wait() => break true,
            frame = rx.recv() => frame,
        };
        let message = match frame {
            Some(Frame::Text(text)) => Message::Text(text.into()),
            Some(Frame::Close(code, reason)) => {
                let close = Message::Close(Some(CloseFrame { code: code.code(), reason: reason.into() }));
                let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(close)).await;
                break false;
            }
            None => break false,
        };
        tokio::select! {
            biased;
            _ = overflow.wait() => break true,
            sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)) => match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break false,
                Err(_) => break true,
            },
        }
    };
    if too_slow {
        metrics::counter!("sfu_signaling_slow_consumers_total").increment(1);
        tracing::info!(queued_bytes = rx.queued_bytes(), "signaling client too slow to read; closing");
        drop(rx);
        let code = CloseCode::TooSlow;
        let close = Message::Close(Some(CloseFrame { code: code.code(), reason: "too slow to read".into() }));
        // The close frame reaches a client that reads again soon; one that never does is dropped.
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
    }
}

/// The next text message, or the close code to end the session with.
async fn next_text(stream: &mut SplitStream<WebSocket>, limit: usize) -> Result<String, (CloseCode, String)> {
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

async fn join(state: &Arc<AppState>, token: &str, redirects: u32, tx: Outbox) -> Result<Joined, (CloseCode, String)> {
    let now = unix_time(SystemTime::now());
    let claims = state.auth.verify(token, now).map_err(|e| (CloseCode::Unauthorized, format!("{}: {e}", e.code())))?;
    if !claims.grants.subscribe && !claims.grants.publish && !claims.grants.publish_data {
        return Err((CloseCode::NotAllowed, "token grants nothing in this room".into()));
    }
    if let Some(target) = crate::redirect::target(state, redirects) {
        let url = crate::redirect::websocket_url(&target.signal_url);
        crate::redirect::count("websocket");
        let _ = tx.send(Outgoing::Message(ServerMessage::Redirect { url: url.clone() }));
        return Err((CloseCode::Redirected, format!("redirected to {}", target.node)));
    }
    let room_id = RoomId(claims.room.clone());
    let joined = state.hub.join_with(
        &room_id,
        Identity(claims.sub.clone()),
        claims.grants,
        ParticipantKind::Signaling,
        Some(tx.clone()),
        crate::room::RoomClaims { topology: claims.topology, audio_mode: claims.audio_mode },
    );
    let (room_ref, id) = joined.await.map_err(|refused| {
        // The error says which limit; the close says the join is over.
        let reason = format!("{}: {}", refused.code.name(), refused.message);
        let request = Some("join".to_owned());
        let _ =
            tx.send(Outgoing::Message(ServerMessage::Error { code: refused.code, message: refused.message, request }));
        (CloseCode::Full, reason)
    })?;
    let session_token = state.auth.issue_session(&claims, id.as_str(), SESSION_TOKEN_TTL, now);
    if !state.hub.welcome(&room_ref, &id, session_token, &tx).await {
        return Err((CloseCode::SessionNotFound, "replaced while joining".into()));
    }
    Ok((room_ref, id, 0))
}

async fn resume(state: &Arc<AppState>, token: &str, tx: Outbox) -> Result<Joined, (CloseCode, String)> {
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
