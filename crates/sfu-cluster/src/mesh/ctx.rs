//! What the mesh's tasks share: the context each connection task holds, and what they report
//! to the supervisor. Apart from `supervisor.rs` so the connection tasks need not reach into it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::handshake::{Established, LocalNode};
use super::keys::ClusterSecret;
use super::messages::PeerMessage;
use super::queue::OutQueue;
use super::{AuthFailure, DownReason, NodeId, Shared};

/// What every task of the mesh needs.
pub(super) struct Ctx {
    pub(super) local: LocalNode,
    pub(super) secret: ClusterSecret,
    pub(super) shared: Arc<Shared>,
    pub(super) reports: mpsc::Sender<Report>,
}

/// What the connection tasks tell the supervisor.
pub(super) enum Report {
    /// A link is ready; the supervisor admits it (and says `PeerUp`) or drops `close`.
    Up {
        generation: u64,
        established: Established,
        label: Arc<str>,
        queue: OutQueue,
        close: oneshot::Sender<DownReason>,
    },
    Message {
        generation: u64,
        from: NodeId,
        message: PeerMessage,
    },
    /// A link that reported `Up` ended.
    Down {
        generation: u64,
        node: NodeId,
        reason: DownReason,
    },
    AuthFailed {
        addr: SocketAddr,
        node: Option<NodeId>,
        reason: AuthFailure,
    },
}
