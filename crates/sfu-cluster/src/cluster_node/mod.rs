//! This node in a Redis-coordinated cluster: its membership (node registry and room leases,
//! [`RedisCluster`]) and its links to the other nodes ([`crate::mesh`]), joined by one task
//! (`glue.rs`) that feeds the registry's live nodes to the mesh and turns both sides' news into
//! [`ClusterEvent`]s.

mod glue;
mod pick;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use sfu_proto::RoomId;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, ClusterEvent};
use crate::lease::RoomLease;
use crate::mesh::{Mesh, MeshConfig, MeshHandle, PeerMessage, ShardEndpoint};
use crate::{Health, NodeId, NodeLoad, NodeRecord, NodeState, RedisCluster, StartError};
pub use pick::pick_node;

/// What cluster mode needs besides this node's record.
#[derive(Clone)]
pub struct ClusterSettings {
    /// The coordinating Redis.
    pub redis_url: String,
    /// Shared by all nodes; at least 32 bytes.
    pub secret: Vec<u8>,
    /// Where the control connection listens (the port of `relay_addr`, on the bind address).
    pub relay_listen: SocketAddr,
    /// This node's shards' relay media endpoints, told to peers in the handshake.
    pub shards: Vec<ShardEndpoint>,
    /// `limits.participants_per_node`, for the load share in [`Cluster::pick_node`].
    pub participants_per_node: usize,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("relay_listen", &self.relay_listen)
            .field("shards", &self.shards)
            .field("participants_per_node", &self.participants_per_node)
            .finish_non_exhaustive()
    }
}

/// How long the end of a drain waits for Redis to drop this node's entries.
const UNREGISTER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// State the glue task keeps for the handle's synchronous answers.
#[derive(Default)]
struct Shared {
    /// Peers whose handshake refused ours (a wrong secret): never a redirect target.
    refused: HashSet<NodeId>,
}

/// A node of a cluster: see the module docs.
pub struct ClusterNode {
    membership: RedisCluster,
    mesh: MeshHandle,
    shared: Arc<Mutex<Shared>>,
    participants_per_node: usize,
    events: Mutex<Option<mpsc::Receiver<ClusterEvent>>>,
}

impl ClusterNode {
    /// Starts the membership supervisor, the mesh's listener and the task joining them. Only a
    /// bad URL or a relay port that cannot be bound fail; an unreachable Redis does not.
    pub fn start(me: NodeRecord, settings: ClusterSettings) -> Result<Self, StartError> {
        let membership = RedisCluster::start(me.clone(), &settings.redis_url)?;
        let membership_events = membership.take_events().ok_or(StartError::NoRuntime)?;
        let (mesh, mesh_events) = Mesh::start(MeshConfig {
            me: me.node.clone(),
            boot: me.boot.clone(),
            listen: settings.relay_listen,
            secret: settings.secret.clone(),
            shards: settings.shards.clone(),
        })
        .map_err(|e| StartError::Relay(format!("{}: {e}", settings.relay_listen)))?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (events_tx, events_rx) = mpsc::channel(glue::EVENT_QUEUE);
        tokio::spawn(glue::run(
            glue::Glue::new(mesh.clone(), shared.clone(), events_tx),
            membership_events,
            mesh_events,
        ));
        Ok(ClusterNode {
            membership,
            mesh,
            shared,
            participants_per_node: settings.participants_per_node,
            events: Mutex::new(Some(events_rx)),
        })
    }

    /// The address the control connection listens on.
    pub fn relay_listen_addr(&self) -> SocketAddr {
        self.mesh.local_addr()
    }

    /// The nodes linked now.
    pub fn linked(&self) -> Vec<NodeId> {
        self.mesh.linked()
    }
}

impl Cluster for ClusterNode {
    fn node(&self) -> &NodeRecord {
        self.membership.node()
    }

    fn report_load(&self, load: NodeLoad) {
        self.membership.report_load(load);
    }

    fn set_state(&self, state: NodeState) {
        self.membership.set_state(state);
    }

    async fn join_room(&self, room: &RoomId) -> RoomLease {
        self.membership.join_room(room).await
    }

    fn leave_room(&self, room: &RoomId, peers_hold_it: bool) {
        self.membership.leave_room(room, peers_hold_it);
    }

    fn room_nodes(&self, room: &RoomId) -> Vec<NodeId> {
        let me = &self.node().node;
        self.membership.room_peers(room).into_iter().map(|l| l.node).filter(|n| n != me).collect()
    }

    fn pick_node(&self) -> Option<NodeRecord> {
        let shared = self.shared.lock();
        let nodes = self.membership.nodes();
        pick_node(self.node(), self.participants_per_node, &nodes, &shared.refused)
    }

    fn send(&self, to: &NodeId, message: PeerMessage) {
        if let Err(e) = self.mesh.send(to, message) {
            tracing::debug!(peer = %to, error = ?e, "cluster: message to peer dropped");
            metrics::counter!("sfu_relay_messages_dropped_total").increment(1);
        }
    }

    fn broadcast(&self, message: PeerMessage) {
        for node in self.mesh.linked() {
            self.send(&node, message.clone());
        }
    }

    fn linked_peers(&self) -> Vec<NodeId> {
        self.mesh.linked()
    }

    fn clock_ms(&self) -> u64 {
        let local = crate::clock::unix_ms();
        // Uncorrected while Redis has never answered.
        let offset = self.membership.redis_offset_ms().unwrap_or(0);
        local.saturating_add_signed(offset)
    }

    fn take_events(&self) -> Option<mpsc::Receiver<ClusterEvent>> {
        self.events.lock().take()
    }

    fn health(&self) -> Health {
        self.membership.health()
    }

    async fn unregister(&self) {
        if !self.membership.unregister(UNREGISTER_WAIT).await {
            tracing::warn!("cluster: Redis did not confirm the unregister; this node's entries expire in 6 s");
        }
    }
}
