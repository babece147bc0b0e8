//! The same simulated participants against Janus's VideoRoom plugin, for side-by-side figures
//! (`--server janus`). Media is untouched: the workers offer and answer exactly as they do with
//! our server; only the signaling differs.
//!
//! Janus's WebSocket API (subprotocol `janus-protocol`): `create` a session, `attach` a
//! VideoRoom handle, then plugin `message`s. A message is acknowledged (`ack`) and answered later
//! by an `event` carrying the same transaction; synchronous plugin requests are answered at once
//! by `success`. Publishers create their room if it does not exist yet, `join` and `publish` with
//! the worker's offer; subscribers wait for the room's publishers to appear, `join` as subscriber
//! with the wanted simulcast substream, answer Janus's offer and `start`.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sfu_proto::LayerPreference;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::media::Command;
use crate::session::{CONNECT_TIMEOUT, Participant, REPLY_TIMEOUT, SessionContext, ask};
/// Janus drops sessions silent for `session_timeout` (120 s in benches/janus).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);
/// How long a subscriber waits for its room's publishers to appear.
const PUBLISHER_WAIT: Duration = Duration::from_secs(15);
/// VideoRoom error: the room already exists (another publisher created it first).
const ROOM_EXISTS: i64 = 427;
/// VideoRoom error: no such room (yet).
const NO_SUCH_ROOM: i64 = 426;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Janus room ids are numbers: a stable hash of the room name, kept below 2^31 so every JSON
/// client reads it exactly.
pub fn room_id(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for byte in name.bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    1 + hash % 0x7fff_fffe
}

/// VideoRoom's simulcast substream for a layer preference (the harness offers its rids low to
/// high and says so with `rid_order`); `auto` leaves Janus's default.
fn substream(layer: LayerPreference) -> Option<u8> {
    match layer {
        LayerPreference::Low => Some(0),
        LayerPreference::Medium => Some(1),
        LayerPreference::High => Some(2),
        _ => None,
    }
}

struct Janus {
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
    session: Option<u64>,
    next_transaction: u64,
}

/// A failed request: Janus's own error, or the plugin's.
#[derive(Debug)]
struct JanusError {
    code: i64,
    reason: String,
}

impl std::fmt::Display for JanusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "janus error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for JanusError {}

impl Janus {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
        let (ws, _) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async_with_config(request, None, true))
                .await
                .map_err(|_| anyhow::anyhow!("websocket connect to janus timed out"))??;
        let (sink, stream) = ws.split();
        let mut janus = Janus { sink, stream, session: None, next_transaction: 0 };
        let created = janus.call(json!({ "janus": "create" })).await?;
        janus.session =
            Some(created["data"]["id"].as_u64().ok_or_else(|| anyhow::anyhow!("no session id in {created}"))?);
        Ok(janus)
    }

    async fn send(&mut self, mut request: Value) -> anyhow::Result<String> {
        self.next_transaction += 1;
        let transaction = format!("t{}", self.next_transaction);
        request["transaction"] = json!(transaction);
        if let Some(session) = self.session {
            request["session_id"] = json!(session);
        }
        self.sink.send(Message::text(request.to_string())).await?;
        Ok(transaction)
    }

    /// Sends `request` and returns the first answer with its transaction that is not an `ack`.
    async fn call(&mut self, request: Value) -> anyhow::Result<Value> {
        let transaction = self.send(request).await?;
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let reply = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| anyhow::anyhow!("janus did not answer transaction {transaction}"))??;
            if reply["transaction"].as_str() != Some(transaction.as_str()) || reply["janus"] == "ack" {
                continue; // events of the handle (webrtcup, media, ...) and acks
            }
            if reply["janus"] == "error" {
                let error = &reply["error"];
                return Err(JanusError {
                    code: error["code"].as_i64().unwrap_or(0),
                    reason: text_of(&error["reason"]),
                }
                .into());
            }
            let data = &reply["plugindata"]["data"];
            if let Some(code) = data["error_code"].as_i64() {
                return Err(JanusError { code, reason: text_of(&data["error"]) }.into());
            }
            return Ok(reply);
        }
    }

    /// A VideoRoom request on `handle`, with an optional JSEP.
    async fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut request = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        self.call(request).await
    }

    async fn attach(&mut self) -> anyhow::Result<u64> {
        let attached = self.call(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" })).await?;
        attached["data"]["id"].as_u64().ok_or_else(|| anyhow::anyhow!("no handle id in {attached}"))
    }

    async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            let text = match self.stream.next().await {
                None => anyhow::bail!("janus closed the websocket"),
                Some(Err(e)) => anyhow::bail!("websocket: {e}"),
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(Message::Close(c))) => anyhow::bail!("janus closed the websocket: {c:?}"),
                Some(Ok(_)) => continue,
            };
            return serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("unreadable janus message ({e}): {text:.200}"));
        }
    }
}

fn text_of(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

fn is_janus_error(e: &anyhow::Error, code: i64) -> bool {
    e.downcast_ref::<JanusError>().is_some_and(|j| j.code == code)
}

fn jsep_of(reply: &Value) -> anyhow::Result<String> {
    reply["jsep"]["sdp"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no jsep in janus reply {reply:.300}"))
}

/// One participant's session with Janus, until `stop` turns true.
pub async fn session(p: &Participant, ctx: &SessionContext, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if p.publish.is_some() && p.subscribe {
        anyhow::bail!("the janus adapter does not run participants that both publish and subscribe");
    }
    let t0 = Instant::now();
    let mut janus = Janus::connect(ctx.ws_url(p.node)).await?;
    ctx.counters.ws_connected.fetch_add(1, Ordering::Relaxed);
    let room = room_id(&p.room);
    let handle = janus.attach().await?;

    if let Some(spec) = p.publish {
        let create = json!({
            "request": "create", "room": room, "publishers": 16, "bitrate": 0,
            "videocodec": "vp8", "audiocodec": "opus", "transport_wide_cc_ext": true,
            "notify_joining": false,
        });
        match janus.message(handle, create, None).await {
            Ok(_) => {}
            Err(e) if is_janus_error(&e, ROOM_EXISTS) => {}
            Err(e) => return Err(e),
        }
        janus
            .message(
                handle,
                json!({ "request": "join", "ptype": "publisher", "room": room, "display": p.identity }),
                None,
            )
            .await?;
        ctx.counters.joined.fetch_add(1, Ordering::Relaxed);
        p.joined.store(true, Ordering::Relaxed);
        let (label, id) = (p.identity.clone(), p.publisher_conn());
        let offer = ask(&p.worker, |reply| Command::Publish { id, spec, label, reply }).await?;
        let jsep = json!({ "type": "offer", "sdp": offer.sdp, "trickle": false, "rid_order": "lmh" });
        let answer = janus
            .message(handle, json!({ "request": "publish", "audio": spec.audio, "video": spec.video }), Some(jsep))
            .await?;
        let sdp = jsep_of(&answer)?;
        ask(&p.worker, |reply| Command::PublisherAnswer { id, sdp, reply }).await?;
        ctx.counters.publisher_answers.fetch_add(1, Ordering::Relaxed);
    }

    if p.subscribe {
        let feeds = wait_for_publishers(&mut janus, handle, room).await?;
        ctx.counters.joined.fetch_add(1, Ordering::Relaxed);
        p.joined.store(true, Ordering::Relaxed);
        let streams: Vec<Value> = feeds
            .iter()
            .map(|feed| match substream(ctx.layer) {
                Some(s) => json!({ "feed": feed, "substream": s }),
                None => json!({ "feed": feed }),
            })
            .collect();
        let attached = janus
            .message(
                handle,
                json!({ "request": "join", "ptype": "subscriber", "room": room, "streams": streams }),
                None,
            )
            .await?;
        let sdp = jsep_of(&attached)?;
        let id = p.subscriber_conn();
        let answer = ask(&p.worker, |reply| Command::SubscriberOffer { id, sdp, t0, reply }).await?;
        janus.message(handle, json!({ "request": "start" }), Some(json!({ "type": "answer", "sdp": answer }))).await?;
        ctx.counters.offers_answered.fetch_add(1, Ordering::Relaxed);
    }

    // Hold: keep the session alive and notice when Janus goes away.
    let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = janus.send(json!({ "janus": "destroy" })).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), janus.sink.close()).await;
                return Ok(());
            }
            _ = keepalive.tick() => {
                janus.send(json!({ "janus": "keepalive" })).await?;
            }
            message = janus.next() => {
                if let Err(e) = message {
                    ctx.counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}

/// The ids of the room's publishers, once there is at least one.
async fn wait_for_publishers(janus: &mut Janus, handle: u64, room: u64) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + PUBLISHER_WAIT;
    loop {
        match janus.message(handle, json!({ "request": "listparticipants", "room": room }), None).await {
            Ok(reply) => {
                let feeds: Vec<u64> = reply["plugindata"]["data"]["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["publisher"] == true)
                    .filter_map(|p| p["id"].as_u64())
                    .collect();
                if !feeds.is_empty() {
                    return Ok(feeds);
                }
            }
            Err(e) if is_janus_error(&e, NO_SUCH_ROOM) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            anyhow::bail!("no publisher appeared in janus room {room} within {PUBLISHER_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_stable_distinct_and_json_safe() {
        let a = room_id("loadtest-0");
        assert_eq!(a, room_id("loadtest-0"));
        assert_ne!(a, room_id("loadtest-1"));
        for name in ["", "x", "loadtest-0", "a-much-longer-room-name-than-usual"] {
            let id = room_id(name);
            assert!((1..0x8000_0000).contains(&id), "{name}: {id}");
        }
    }

    #[test]
    fn layers_map_to_substreams_low_to_high() {
        assert_eq!(substream(LayerPreference::Low), Some(0));
        assert_eq!(substream(LayerPreference::High), Some(2));
        assert_eq!(substream(LayerPreference::Auto), None);
    }
}
