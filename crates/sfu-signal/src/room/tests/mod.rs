//! Room behaviour against [`FakeMedia`]: no sockets, no shards, no browser. Each client is a
//! participant with an outbox the test reads, joined and welcomed as a signaling session is.

mod data;
mod drain;
mod limits;
mod membership;
mod mesh;
mod mix;
mod races;
mod resume;
mod top_n;
mod tracks;
mod two_nodes;
mod viewers;

use sfu_proto::{Identity, LeaveReason, ParticipantId, RoomId, ServerMessage, TrackId};
use sfu_transport::{ConnId, TrackKey};
use std::sync::Arc;
use std::time::Duration;

use super::fake_media::{Call, FakeMedia};
use super::{Frame, Hub, Outbox, OutboxReceiver, Outgoing, ParticipantKind, RequestError, RoomClaims, RoomRef, outbox};
use crate::auth::Grants;
use crate::config::{AudioConfig, Limits};

pub(super) const DEPARTURE: Duration = Duration::from_secs(10);

type TestHub = Arc<Hub<FakeMedia>>;

fn hub() -> TestHub {
    hub_with(Limits::default())
}

fn hub_with(limits: Limits) -> TestHub {
    Hub::new(FakeMedia::default(), single_node(), DEPARTURE, limits, AudioConfig::default(), Default::default())
}

/// The cluster of a node alone, as the server runs without `cluster.redis_url`.
fn single_node() -> sfu_cluster::AnyCluster {
    let me = sfu_cluster::NodeRecord {
        node: sfu_proto::NodeId("ND_test".into()),
        boot: sfu_proto::BootId("BT_test".into()),
        signal_url: "http://127.0.0.1:7880".into(),
        relay_addr: "127.0.0.1:7882".into(),
        region: None,
    };
    sfu_cluster::AnyCluster::Local(sfu_cluster::LocalCluster::new(me))
}

fn room_id(name: &str) -> RoomId {
    RoomId(name.into())
}

struct Client {
    id: ParticipantId,
    room: RoomRef,
    tx: Outbox,
    rx: OutboxReceiver,
    publisher_conn: ConnId,
    subscriber_conn: ConnId,
}

impl Client {
    /// Everything sent to this client since the last look.
    fn received(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while let Some(frame) = self.rx.try_recv() {
            out.push(match frame {
                Frame::Text(text) => Outgoing::Message(serde_json::from_str(&text).expect("a server message")),
                Frame::Close(code, reason) => Outgoing::Close(code, reason),
            });
        }
        out
    }

    /// The messages (not close frames) sent since the last look.
    fn messages(&mut self) -> Vec<ServerMessage> {
        self.received()
            .into_iter()
            .filter_map(|o| match o {
                Outgoing::Message(m) => Some(m),
                Outgoing::Close(..) => None,
            })
            .collect()
    }

    /// A fresh outbox, as a new socket would bring.
    fn new_socket(&mut self) {
        let (tx, rx) = outbox();
        self.tx = tx;
        self.rx = rx;
    }
}

/// Joins without the welcome: what `Hub::join` alone does.
async fn join_only(hub: &TestHub, room: &str, identity: &str, kind: ParticipantKind) -> Client {
    let (tx, rx) = outbox();
    let outbox = (kind == ParticipantKind::Signaling).then(|| tx.clone());
    let joined = hub.join(&room_id(room), Identity(identity.into()), Grants::participant(), kind, outbox).await;
    let (room_ref, id) = joined.expect("room for one more");
    // A session replaced before this look has no connections left to name.
    let gone = (ConnId(u64::MAX), ConnId(u64::MAX));
    let (publisher_conn, subscriber_conn) =
        room_ref.lock().await.participants.get(&id).map_or(gone, |p| (p.publisher_conn, p.subscriber_conn));
    Client { id, room: room_ref, tx, rx, publisher_conn, subscriber_conn }
}

/// Joins and is welcomed, as a signaling socket's `join` is.
async fn connect(hub: &TestHub, room: &str, identity: &str) -> Client {
    let client = join_only(hub, room, identity, ParticipantKind::Signaling).await;
    assert!(hub.welcome(&client.room, &client.id, format!("session-{}", client.id), &client.tx).await);
    client
}

/// A publisher offer with one live section per kind (`"audio"`, `"video"`; `"-"` for a stopped
/// one), mids numbered from 0.
fn offer(kinds: &[&str]) -> String {
    let mut sdp = String::from("v=0\r\n");
    for (mid, kind) in kinds.iter().enumerate() {
        let section = match *kind {
            "-" => "m=video 0 UDP/TLS/RTP/SAVPF 96".to_owned(),
            kind => format!("m={kind} 9 UDP/TLS/RTP/SAVPF 96"),
        };
        sdp.push_str(&format!("{section}\r\na=mid:{mid}\r\n"));
    }
    sdp
}

async fn publish(hub: &TestHub, client: &Client, kinds: &[&str]) -> Result<String, RequestError> {
    let mut room = client.room.lock().await;
    hub.publisher_offer(&mut room, &client.id, offer(kinds), Vec::new()).await
}

async fn answer(hub: &TestHub, client: &Client) -> Result<(), RequestError> {
    let mut room = client.room.lock().await;
    hub.subscriber_answer(&mut room, &client.id, "v=0\r\n".into()).await
}

async fn leave(hub: &TestHub, client: &Client, reason: LeaveReason) {
    let mut room = client.room.lock().await;
    hub.remove_participant(&mut room, &client.id, reason).await;
}

/// The tracks `client` publishes, in order: (id, key).
async fn tracks_of(client: &Client) -> Vec<(TrackId, TrackKey)> {
    let room = client.room.lock().await;
    room.participants[&client.id].tracks.iter().map(|t| (t.info.id.clone(), t.key)).collect()
}

/// The track ids of each subscriber offer among `messages`, with their publishers.
fn offers(messages: &[ServerMessage]) -> Vec<Vec<(ParticipantId, TrackId)>> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Offer { tracks, .. } => {
                Some(tracks.iter().map(|t| (t.participant_id.clone(), t.track_id.clone())).collect())
            }
            _ => None,
        })
        .collect()
}

/// The requests made of one connection, in order.
fn calls_on(hub: &TestHub, conn: ConnId) -> Vec<Call> {
    hub.media
        .calls()
        .into_iter()
        .filter(|c| match c {
            Call::PublisherOffer { conn: c }
            | Call::AddDownTrack { conn: c, .. }
            | Call::RemoveDownTrack { conn: c, .. }
            | Call::SubscriberOffer { conn: c, .. }
            | Call::SubscriberAnswer { conn: c }
            | Call::EgressOffer { conn: c, .. }
            | Call::Candidate { conn: c }
            | Call::SetSubscription { conn: c, .. }
            | Call::SendData { conn: c }
            | Call::Close { conn: c } => *c == conn,
            Call::SetMuted { .. }
            | Call::SetSpeaking { .. }
            | Call::SetAmongLoudest { .. }
            | Call::OpenLink { .. }
            | Call::CloseLink { .. }
            | Call::AddRelayTrack { .. }
            | Call::RemoveRelayTrack { .. }
            | Call::AddRelayOut { .. }
            | Call::RemoveRelayOut { .. }
            | Call::SetRelayLayers { .. }
            | Call::RelayLayersActive { .. }
            | Call::AddMix { .. }
            | Call::RemoveMix { .. }
            | Call::AddMixInput { .. }
            | Call::RemoveMixInput { .. } => false,
        })
        .collect()
}

/// Whether `room` is the room registered under its name, holding exactly `who`.
async fn registered_with(hub: &TestHub, name: &str, room: &RoomRef, who: &[&ParticipantId]) -> bool {
    let Some(registered) = hub.room(&room_id(name)) else { return false };
    let guard = registered.lock().await;
    Arc::ptr_eq(&registered, room)
        && guard.participants.len() == who.len()
        && who.iter().all(|id| guard.participants.contains_key(*id))
}
