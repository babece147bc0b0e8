//! The factory: one concrete type for the signaling layer, whichever mode the config picks.
//! An enum rather than `dyn Cluster`, since the trait has an async method.

use sfu_proto::RoomId;
use tokio::sync::mpsc;

use crate::StartError;
use crate::cluster::{Cluster, ClusterEvent};
use crate::cluster_node::{ClusterNode, ClusterSettings};
use crate::lease::RoomLease;
use crate::local::LocalCluster;
use crate::mesh::PeerMessage;
use crate::{Health, NodeId, NodeLoad, NodeRecord, NodeState};

/// The cluster this node runs in.
pub enum AnyCluster {
    /// Alone (no Redis configured).
    Local(LocalCluster),
    /// In a Redis-coordinated cluster.
    Node(ClusterNode),
    /// Tests: a node whose messages to peers are recorded.
    #[cfg(feature = "testing")]
    Recording(crate::testing::RecordingCluster),
}

/// How this node takes part, from the configuration.
#[derive(Clone, Debug)]
pub enum ClusterMode {
    /// No Redis configured: one node.
    Local,
    /// `cluster.redis_url` configured.
    Redis(ClusterSettings),
}

/// Starts this node's membership: alone, or a node of the cluster the settings name (must be
/// called inside a Tokio runtime then).
pub fn start(mode: ClusterMode, me: NodeRecord) -> Result<AnyCluster, StartError> {
    match mode {
        ClusterMode::Local => Ok(AnyCluster::Local(LocalCluster::new(me))),
        ClusterMode::Redis(settings) => Ok(AnyCluster::Node(ClusterNode::start(me, settings)?)),
    }
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyCluster::Local($c) => $e,
            AnyCluster::Node($c) => $e,
            #[cfg(feature = "testing")]
            AnyCluster::Recording($c) => $e,
        }
    };
}

impl Cluster for AnyCluster {
    fn node(&self) -> &NodeRecord {
        each!(self, c => c.node())
    }
    fn report_load(&self, load: NodeLoad) {
        each!(self, c => c.report_load(load))
    }
    fn set_state(&self, state: NodeState) {
        each!(self, c => c.set_state(state))
    }
    async fn join_room(&self, room: &RoomId) -> RoomLease {
        each!(self, c => c.join_room(room).await)
    }
    fn leave_room(&self, room: &RoomId, peers_hold_it: bool) {
        each!(self, c => c.leave_room(room, peers_hold_it))
    }
    fn send(&self, to: &NodeId, message: PeerMessage) {
        each!(self, c => c.send(to, message))
    }
    fn broadcast(&self, message: PeerMessage) {
        each!(self, c => c.broadcast(message))
    }
    fn clock_ms(&self) -> u64 {
        each!(self, c => c.clock_ms())
    }
    fn linked_peers(&self) -> Vec<NodeId> {
        each!(self, c => c.linked_peers())
    }
    fn room_nodes(&self, room: &RoomId) -> Vec<NodeId> {
        each!(self, c => c.room_nodes(room))
    }
    fn pick_node(&self) -> Option<NodeRecord> {
        each!(self, c => c.pick_node())
    }
    fn take_events(&self) -> Option<mpsc::Receiver<ClusterEvent>> {
        each!(self, c => c.take_events())
    }
    fn health(&self) -> Health {
        each!(self, c => c.health())
    }
    async fn unregister(&self) {
        each!(self, c => c.unregister().await)
    }
}
