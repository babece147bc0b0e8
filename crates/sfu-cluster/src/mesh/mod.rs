//! The node-to-node control mesh (docs/cluster.md, "Room state across nodes" and "The relay"):
//! one authenticated TCP connection per pair of live nodes, carrying [`PeerMessage`]s in sealed
//! frames, and handing each link's keys to the application for the media relay.
//!
//! [`Mesh::start`] binds the relay address and runs the mesh's tasks; the application feeds it
//! the registry's live nodes with [`MeshHandle::set_peers`] and gets [`MeshEvent`]s. Of each
//! pair the node with the lower id dials (0.2 s doubling to 2 s between attempts while the peer
//! is listed, up to 30 s after an authentication failure); a peer no longer listed, or listed
//! with another boot, loses its link at once. Each side pings every second and closes a link
//! that brought no frame for 5 s.
//!
//! The protocol is sans-IO in [`handshake`], [`keys`], [`frame`] and [`messages`]; the tasks
//! here (a supervisor, the listener, one dialer per peer it dials, one task per connection)
//! only move bytes and time.
//!
//! Events of one peer come in order: `PeerUp`, its `Message`s, `PeerDown`, then maybe a new
//! `PeerUp`. Messages sent with [`MeshHandle::send`] reach the peer in order, as long as the
//! link lasts; after a `PeerDown` and a new `PeerUp` the application resyncs (`RoomHello`).

pub mod frame;
pub mod handshake;
pub mod keys;
pub mod messages;

mod conn;
mod ctx;
mod dial;
mod link;
mod listen;
mod queue;
mod supervisor;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

pub use frame::FrameError;
pub use handshake::{HandshakeError, LocalNode, MESH_VERSION, RefuseReason, ShardEndpoint};
pub use keys::{ClusterSecret, CtlKey, LinkKeys, MIN_SECRET_LEN, SecretTooShort, Side, SrtpKey};
pub use messages::{DecodeError, PeerMessage, RemoteParticipant, TrackCodec};

use crate::{BootId, NodeId};

/// A handshake (connect included, and for the dialer the peer's first sealed frame) must be
/// over by then, or the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Each side of a link sends a `Ping` this often; the `Pong` gives the RTT.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A link that brought no frame for this long is dead (five pings missed).
pub const LINK_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections still in their handshake, at most: a port scan or a flood of half-open
/// connections holds this many slots (each for at most [`HANDSHAKE_TIMEOUT`]), nothing more.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Messages queued for one peer, at most, before its link is reset.
pub const QUEUE_MAX_FRAMES: usize = 4096;
/// Bytes queued for one peer, at most, before its link is reset.
pub const QUEUE_MAX_BYTES: usize = 8 << 20;

/// Events waiting for the application, at most; the mesh waits when it is full.
const EVENT_QUEUE: usize = 1024;

/// What [`Mesh::start`] needs.
#[derive(Clone)]
pub struct MeshConfig {
    /// This node's id.
    pub me: NodeId,
    /// This run of it.
    pub boot: BootId,
    /// `cluster.relay_addr`, where peers dial (port 0 picks one; see [`MeshHandle::local_addr`]).
    pub listen: SocketAddr,
    /// `cluster.secret`, at least [`MIN_SECRET_LEN`] bytes.
    pub secret: Vec<u8>,
    /// This node's shards' relay endpoints, handed to every peer.
    pub shards: Vec<ShardEndpoint>,
}

impl fmt::Debug for MeshConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshConfig")
            .field("me", &self.me)
            .field("boot", &self.boot)
            .field("listen", &self.listen)
            .field("secret", &"..")
            .field("shards", &self.shards)
            .finish()
    }
}

/// What the mesh tells the application.
#[derive(Debug)]
pub enum MeshEvent {
    /// A link to a peer is up: both sides proved they hold the secret, and have the same keys.
    PeerUp {
        /// The peer.
        node: NodeId,
        /// Its boot.
        boot: BootId,
        /// The link's keys, oriented for this side.
        keys: LinkKeys,
        /// The peer's shards' relay endpoints.
        shards: Vec<ShardEndpoint>,
        /// Whether this side dialed.
        dialer: bool,
    },
    /// A link that was up is gone. Messages sent to it since may be lost.
    PeerDown {
        /// The peer.
        node: NodeId,
        /// The boot the link was with.
        boot: BootId,
        /// Why.
        reason: DownReason,
    },
    /// A message from a linked peer.
    Message {
        /// The peer.
        from: NodeId,
        /// What it said.
        message: PeerMessage,
    },
    /// A handshake failed (counted in `sfu_relay_auth_failures_total{peer}`).
    AuthFailed {
        /// The address dialed, or the address an inbound connection came from.
        addr: SocketAddr,
        /// The node id the other side gave, if it got that far (unauthenticated).
        node: Option<NodeId>,
        /// What went wrong.
        reason: AuthFailure,
    },
}

/// Why a link went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The peer closed the connection.
    Closed,
    /// Reading or writing failed.
    Io(io::ErrorKind),
    /// No frame for [`LINK_IDLE_TIMEOUT`].
    Timeout,
    /// A frame was too long or did not open (tampered, replayed, forged): counted in
    /// `sfu_relay_frame_errors_total{peer}`.
    BadFrame(FrameError),
    /// Its outgoing queue overflowed ([`QUEUE_MAX_FRAMES`] or [`QUEUE_MAX_BYTES`]): reset,
    /// counted in `sfu_relay_resets_total{peer}`.
    Overflow,
    /// The peer is no longer listed.
    Unlisted,
    /// The peer is listed with another boot (it restarted) or another address.
    Restarted,
    /// A newer connection from the same peer and boot took its place.
    Replaced,
    /// The mesh is shutting down (every [`MeshHandle`] dropped).
    Shutdown,
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The protocol failed (see [`HandshakeError`]).
    Handshake(HandshakeError),
    /// It was not over within [`HANDSHAKE_TIMEOUT`].
    Timeout,
    /// The other side closed the connection without a word (not counted: a killed peer, a
    /// probe, a responder over its [`MAX_PENDING_HANDSHAKES`]).
    Closed,
    /// An oversized handshake frame, or (dialer) the peer's first sealed frame did not open.
    Frame(FrameError),
    /// Reading or writing failed.
    Io(io::ErrorKind),
}

impl AuthFailure {
    /// Whether it is counted and backed off from: all but a peer that is not the one expected
    /// (the registry lagging) and a connection closed without a word.
    pub fn counts(&self) -> bool {
        match self {
            AuthFailure::Handshake(e) => e.is_auth_failure(),
            AuthFailure::Closed | AuthFailure::Io(_) => false,
            AuthFailure::Timeout | AuthFailure::Frame(_) => true,
        }
    }
}

/// Why [`MeshHandle::send`] did not queue a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No link to that peer is up.
    #[error("no link to that peer")]
    NotLinked,
    /// The peer's queue was full: its link is being reset (`PeerDown`, then a new `PeerUp`).
    #[error("the peer's queue overflowed; its link is reset")]
    Overflow,
    /// The message does not fit one frame.
    #[error("a message of {len} bytes does not fit a frame")]
    TooLarge {
        /// Its encoded length.
        len: usize,
    },
    /// `Ping` and `Pong` belong to the link.
    #[error("ping and pong are the link's own")]
    LinkInternal,
}

/// Starts the mesh.
pub struct Mesh;

impl Mesh {
    /// Binds `config.listen` and starts the mesh's tasks on the current tokio runtime (call
    /// it inside one). They run until every [`MeshHandle`] is dropped, or the receiver is.
    /// Fails if the address cannot be bound, or the secret is shorter than [`MIN_SECRET_LEN`].
    pub fn start(config: MeshConfig) -> io::Result<(MeshHandle, mpsc::Receiver<MeshEvent>)> {
        let secret = ClusterSecret::new(config.secret).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            me: config.me.clone(),
            local_addr,
            links: Mutex::default(),
            listing: Mutex::default(),
            next_generation: AtomicU64::new(1),
        });
        let local = LocalNode { node: config.me, boot: config.boot, shards: config.shards };
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        supervisor::spawn(local, secret, shared.clone(), listener, commands, events_tx);
        Ok((MeshHandle { shared, commands: commands_tx }, events))
    }
}

/// Controls a running mesh; cheap to clone. The mesh stops when every clone is dropped.
#[derive(Clone)]
pub struct MeshHandle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl MeshHandle {
    /// The registry's live nodes (this node among them or not), each with its boot and relay
    /// address; replaces the previous list. Links follow: the lower id of each listed pair
    /// dials, a peer no longer listed loses its link, a peer listed with another boot loses its
    /// link to the old boot at once. Only listed nodes, with the listed boot, are admitted.
    pub fn set_peers(&self, peers: Vec<(NodeId, BootId, SocketAddr)>) {
        // A send fails only when the mesh has stopped, when there is nothing to steer.
        let _ = self.commands.send(Command::SetPeers(peers));
    }

    /// Queues `message` for `to`. Messages to one peer arrive in the order sent, while its link
    /// lasts. A full queue resets the link ([`SendError::Overflow`]).
    pub fn send(&self, to: &NodeId, message: PeerMessage) -> Result<(), SendError> {
        if message.is_link_internal() {
            return Err(SendError::LinkInternal);
        }
        let bytes = message.encode();
        if bytes.len() > frame::MAX_PLAINTEXT_LEN {
            return Err(SendError::TooLarge { len: bytes.len() });
        }
        let mut links = self.shared.links();
        let link = links.get(to).ok_or(SendError::NotLinked)?;
        if link.queue.push(bytes).is_ok() {
            return Ok(());
        }
        let link = links.remove(to).expect("looked up above");
        drop(links);
        metrics::counter!("sfu_relay_resets_total", "peer" => link.label.to_string()).increment(1);
        tracing::warn!(peer = %to.escaped(), addr = %link.label, "relay queue overflowed; resetting the link");
        Err(SendError::Overflow)
    }

    /// The peers with a link up, sorted.
    pub fn linked(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.shared.links().keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// The address the mesh listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's id.
    pub fn me(&self) -> &NodeId {
        &self.shared.me
    }
}

enum Command {
    SetPeers(Vec<(NodeId, BootId, SocketAddr)>),
}

/// A listed peer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listed {
    boot: BootId,
    addr: SocketAddr,
}

/// A link that is up, as senders reach it.
struct LinkTx {
    /// Which connection: a replaced link's late reports are told apart by it.
    generation: u64,
    queue: queue::OutQueue,
    /// The peer's relay address, the `peer` label of its metrics.
    label: Arc<str>,
}

/// What the handle, the supervisor and the connection tasks share.
struct Shared {
    me: NodeId,
    local_addr: SocketAddr,
    /// The links up, kept by the supervisor; `send` takes from them (and removes one it resets).
    links: Mutex<HashMap<NodeId, LinkTx>>,
    /// The listed peers, kept by the supervisor; the listener admits only these.
    listing: Mutex<HashMap<NodeId, Listed>>,
    next_generation: AtomicU64,
}

impl Shared {
    fn links(&self) -> MutexGuard<'_, HashMap<NodeId, LinkTx>> {
        // Nothing panics while holding it; if something did, the map is still consistent.
        self.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn listing(&self) -> MutexGuard<'_, HashMap<NodeId, Listed>> {
        self.listing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// A listed peer's node id as a metric label (as the media plane's); `unlisted` for anyone
    /// else, so that strangers cannot grow the label set.
    fn label_of(&self, node: Option<&NodeId>) -> Arc<str> {
        match node.filter(|n| self.listing().contains_key(*n)) {
            Some(node) => node.as_str().into(),
            None => "unlisted".into(),
        }
    }
}
