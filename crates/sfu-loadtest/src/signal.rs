//! One simulated participant's signaling session over the server's WebSocket protocol
//! (docs/protocol.md): join with a locally minted token, offer the publisher connection, answer
//! every subscriber offer, ask for the configured layer of each video track, leave at the end.

use futures_util::{SinkExt, StreamExt};
use sfu_proto::{ClientMessage, ParticipantId, ServerMessage, SubscriptionSettings, TrackId, TrackKind};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::media::Command;
use crate::session::{CONNECT_TIMEOUT, Participant, SessionContext, ask};
use crate::token::Grants;

pub(crate) async fn session(
    p: &Participant,
    ctx: &SessionContext,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let grants = Grants { publish: p.publish.is_some(), subscribe: p.subscribe, publish_data: false, admin: false };
    let token = ctx.minter.mint(&p.room, &p.identity, grants)?;
    let (ws, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(ctx.ws_url(p.node), None, true),
    )
    .await
    .map_err(|_| anyhow::anyhow!("websocket connect timed out"))??;
    ctx.counters.ws_connected.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let send = |m: &ClientMessage| Message::text(serde_json::to_string(m).unwrap_or_default());
    sink.send(send(&ClientMessage::Join { token, redirects: 0 })).await?;

    let mut subscribed: HashSet<TrackId> = HashSet::new();
    let mut me: Option<ParticipantId> = None;
    let mut pending: Vec<ClientMessage> = Vec::new();

    let subscription = |track_id: TrackId| {
        ClientMessage::Subscription(SubscriptionSettings {
            track_id,
            layer: ctx.layer,
            max_width: None,
            max_height: None,
            paused: false,
        })
    };

    loop {
        for m in pending.drain(..) {
            sink.send(send(&m)).await?;
        }
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = stop.changed() => {
                let _ = sink.send(send(&ClientMessage::Leave)).await;
                // Read on until the server closes the socket after the leave: dropping it with
                // messages unread (a mass leave broadcasts one per participant) resets the
                // connection, and the server may lose the leave unread and wait for a resume.
                let drain = async {
                    while let Some(Ok(m)) = stream.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                return Ok(());
            }
        };
        let text = match frame {
            None => {
                ctx.counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
                anyhow::bail!("server closed the websocket");
            }
            Some(Err(e)) => anyhow::bail!("websocket: {e}"),
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Close(c))) => {
                ctx.counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
                anyhow::bail!("server closed the websocket: {c:?}");
            }
            Some(Ok(_)) => continue,
        };
        let message: ServerMessage = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => anyhow::bail!("unreadable server message ({e}): {text:.200}"),
        };
        match message {
            ServerMessage::Joined { participant, participants, .. } => {
                if !crate::media::debug_mode().is_empty() && p.id < 6 {
                    eprintln!(
                        "{} joined {:.1} ms after websocket connect",
                        p.identity,
                        t0.elapsed().as_secs_f64() * 1000.0
                    );
                }
                ctx.counters.joined.fetch_add(1, Ordering::Relaxed);
                p.joined.store(true, Ordering::Relaxed);
                me = Some(participant.id);
                if p.subscribe {
                    for other in participants {
                        for track in other.tracks {
                            if track.kind == TrackKind::Video && subscribed.insert(track.id.clone()) {
                                pending.push(subscription(track.id));
                            }
                        }
                    }
                }
                if let Some(spec) = p.publish {
                    let label = p.identity.clone();
                    let id = p.publisher_conn();
                    let offer = ask(&p.worker, |reply| Command::Publish { id, spec, label, reply }).await?;
                    pending.push(ClientMessage::Offer { sdp: offer.sdp, tracks: offer.tracks });
                }
            }
            ServerMessage::Answer { sdp } => {
                let id = p.publisher_conn();
                ask(&p.worker, |reply| Command::PublisherAnswer { id, sdp, reply }).await?;
                ctx.counters.publisher_answers.fetch_add(1, Ordering::Relaxed);
            }
            ServerMessage::Offer { sdp, .. } => {
                if !crate::media::debug_mode().is_empty() && p.id < 6 {
                    eprintln!(
                        "{} offer {:.1} ms after websocket connect (transport-cc offered: {})",
                        p.identity,
                        t0.elapsed().as_secs_f64() * 1000.0,
                        sdp.contains("transport-cc")
                    );
                    if crate::media::debug_mode() == "sdp" {
                        eprintln!("{sdp}");
                    }
                }
                let id = p.subscriber_conn();
                let answer = ask(&p.worker, |reply| Command::SubscriberOffer { id, sdp, t0, reply }).await?;
                pending.push(ClientMessage::Answer { sdp: answer });
                ctx.counters.offers_answered.fetch_add(1, Ordering::Relaxed);
            }
            ServerMessage::TrackPublished { participant_id, track } => {
                let mine = me.as_ref() == Some(&participant_id);
                if p.subscribe && !mine && track.kind == TrackKind::Video && subscribed.insert(track.id.clone()) {
                    pending.push(subscription(track.id));
                }
            }
            ServerMessage::Error { code, message, request } => {
                ctx.counters.server_errors.fetch_add(1, Ordering::Relaxed);
                ctx.note_failure(format!("{}: server error {code:?} on {request:?}: {message}", p.identity));
            }
            _ => {}
        }
    }
}
