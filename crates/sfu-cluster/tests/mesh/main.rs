//! The mesh over loopback: real meshes (and, for what a mesh never does, a hand-driven peer
//! speaking the protocol through the crate's sans-IO parts) linking, exchanging, failing.

mod failures;
mod hostile;
mod links;
mod recorder;

use std::net::SocketAddr;
use std::time::Duration;

use sfu_cluster::mesh::frame::{FrameDecoder, FrameOpener, FrameSealer, MAX_FRAME_LEN, plain_frame};
use sfu_cluster::mesh::handshake::{Handshake, LocalNode};
use sfu_cluster::mesh::{ClusterSecret, LinkKeys, Mesh, MeshConfig, MeshEvent, MeshHandle, PeerMessage, ShardEndpoint};
use sfu_cluster::{BootId, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Longest wait for anything that should happen promptly; generous for a busy machine.
const PROMPT: Duration = Duration::from_secs(10);

/// A mesh under test.
struct Node {
    handle: MeshHandle,
    events: mpsc::Receiver<MeshEvent>,
    id: NodeId,
    boot: BootId,
    /// `AuthFailed` events of connections that never named a node (strangers), skipped by
    /// the helpers below and counted here.
    stranger_failures: usize,
}

fn secret(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

fn shards_of(id: &str) -> Vec<ShardEndpoint> {
    vec![
        ShardEndpoint { media_addr: "127.0.0.1:7000".parse().unwrap(), rtcp_ssrc: id.len() as u32 },
        ShardEndpoint { media_addr: "127.0.0.1:7001".parse().unwrap(), rtcp_ssrc: 1000 + id.len() as u32 },
    ]
}

impl Node {
    fn start(id: &str, boot: &str, secret_byte: u8) -> Node {
        recorder::install();
        let config = MeshConfig {
            me: id.into(),
            boot: boot.into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            secret: secret(secret_byte),
            shards: shards_of(id),
        };
        let (handle, events) = Mesh::start(config).expect("mesh starts");
        Node { handle, events, id: id.into(), boot: boot.into(), stranger_failures: 0 }
    }

    fn entry(&self) -> (NodeId, BootId, SocketAddr) {
        (self.id.clone(), self.boot.clone(), self.handle.local_addr())
    }

    /// The metric label others give this node: its id. (Tests that read metrics by label use
    /// ids of their own: the recorder is shared by every test of the binary.)
    fn label(&self) -> String {
        self.id.to_string()
    }

    /// The next event within `limit`, strangers' failures skipped.
    async fn poll(&mut self, limit: Duration) -> Option<MeshEvent> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Ok(Some(MeshEvent::AuthFailed { node: None, .. })) => self.stranger_failures += 1,
                Ok(Some(event)) => return Some(event),
                Ok(None) => panic!("{}: the mesh stopped", self.id),
                Err(_) => return None,
            }
        }
    }

    async fn next(&mut self) -> MeshEvent {
        match self.poll(PROMPT).await {
            Some(event) => event,
            None => panic!("{}: no event within {PROMPT:?}", self.id),
        }
    }

    /// The next event, which must be a `PeerUp`.
    async fn expect_up(&mut self) -> (NodeId, BootId, LinkKeys, Vec<ShardEndpoint>, bool) {
        match self.next().await {
            MeshEvent::PeerUp { node, boot, keys, shards, dialer } => (node, boot, keys, shards, dialer),
            other => panic!("{}: expected PeerUp, got {other:?}", self.id),
        }
    }

    /// The next event, which must be a `PeerDown`.
    async fn expect_down(&mut self) -> (NodeId, BootId, sfu_cluster::mesh::DownReason) {
        match self.next().await {
            MeshEvent::PeerDown { node, boot, reason } => (node, boot, reason),
            other => panic!("{}: expected PeerDown, got {other:?}", self.id),
        }
    }

    /// The next event, which must be a `Message`.
    async fn expect_message(&mut self) -> (NodeId, PeerMessage) {
        match self.next().await {
            MeshEvent::Message { from, message } => (from, message),
            other => panic!("{}: expected a message, got {other:?}", self.id),
        }
    }

    /// Asserts that no event comes for `span`.
    async fn quiet(&mut self, span: Duration) {
        if let Some(event) = self.poll(span).await {
            panic!("{}: expected no event, got {event:?}", self.id);
        }
    }
}

/// Lists every node in every node's registry.
fn list_all(nodes: &[&Node]) {
    let entries: Vec<_> = nodes.iter().map(|n| n.entry()).collect();
    for node in nodes {
        node.handle.set_peers(entries.clone());
    }
}

/// Two meshes linked; returns them after both said `PeerUp`.
async fn linked_pair(a: &str, b: &str) -> (Node, Node) {
    let (mut a, mut b) = (Node::start(a, "a1", 7), Node::start(b, "b1", 7));
    list_all(&[&a, &b]);
    a.expect_up().await;
    b.expect_up().await;
    (a, b)
}

fn data(n: u32) -> PeerMessage {
    PeerMessage::Data { room: "r".into(), from: "PA_1".into(), text: true, payload: n.to_be_bytes().to_vec().into() }
}

fn data_index(message: &PeerMessage) -> u32 {
    match message {
        PeerMessage::Data { payload, .. } => u32::from_be_bytes(payload[..].try_into().unwrap()),
        other => panic!("expected data, got {other:?}"),
    }
}

/// A peer driven by hand over a raw socket, through the crate's sans-IO handshake and frames.
struct RawPeer {
    stream: TcpStream,
    decoder: FrameDecoder,
    sealer: FrameSealer,
    opener: FrameOpener,
}

impl RawPeer {
    /// Dials `to` as `id`/`boot` with the secret byte given, and completes the handshake.
    async fn dial(to: &Node, id: &str, boot: &str, secret_byte: u8) -> RawPeer {
        let mut stream = TcpStream::connect(to.handle.local_addr()).await.unwrap();
        let local = LocalNode { node: id.into(), boot: boot.into(), shards: vec![] };
        let secret = ClusterSecret::new(secret(secret_byte)).unwrap();
        let mut handshake = Handshake::dialer(local, &secret, rand::random(), (to.id.clone(), to.boot.clone()));
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        let established = loop {
            while let Some(message) = handshake.poll_transmit() {
                stream.write_all(&plain_frame(&message.encode())).await.unwrap();
            }
            if let Some(established) = handshake.poll_established() {
                break established;
            }
            let body = read_frame(&mut stream, &mut decoder).await.expect("a handshake frame");
            handshake.handle_bytes(&body).expect("handshake succeeds");
        };
        RawPeer {
            stream,
            decoder,
            sealer: FrameSealer::new(&established.keys.ctl_out),
            opener: FrameOpener::new(&established.keys.ctl_in),
        }
    }

    async fn send(&mut self, message: &PeerMessage) {
        let frame = self.sealer.seal(&message.encode()).unwrap();
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn send_raw(&mut self, plaintext: &[u8]) {
        let frame = self.sealer.seal(plaintext).unwrap();
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next message the mesh sent.
    async fn recv(&mut self) -> PeerMessage {
        let body = read_frame(&mut self.stream, &mut self.decoder).await.expect("a frame");
        PeerMessage::decode(&self.opener.open(body).expect("opens")).expect("decodes")
    }
}

/// Reads one frame body; `None` if the connection closed (or failed) first.
async fn read_frame(stream: &mut TcpStream, decoder: &mut FrameDecoder) -> Option<bytes::BytesMut> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(body) = decoder.pop().unwrap() {
            return Some(body);
        }
        match tokio::time::timeout(PROMPT, stream.read(&mut buf)).await.expect("the peer answers or closes") {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

/// Waits until the other end closes `stream` (reading and discarding what comes); the time taken.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + limit, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}
