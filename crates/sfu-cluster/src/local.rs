//! A node alone: no coordinator, no peers; every answer is immediate and local.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sfu_proto::RoomId;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, ClusterEvent};
use crate::lease::RoomLease;
use crate::membership::RoomSid;
use crate::mesh::PeerMessage;
use crate::{Health, NodeId, NodeLoad, NodeRecord, NodeState};

/// Single-node mode: the server as it always was.
pub struct LocalCluster {
    me: NodeRecord,
    state: Mutex<NodeState>,
    next_sid: AtomicU64,
}

impl LocalCluster {
    /// A node that is its own cluster.
    pub fn new(me: NodeRecord) -> Self {
        LocalCluster { me, state: Mutex::new(NodeState::Serving), next_sid: AtomicU64::new(1) }
    }
}

impl Cluster for LocalCluster {
    fn node(&self) -> &NodeRecord {
        &self.me
    }

    fn report_load(&self, _load: NodeLoad) {}

    fn set_state(&self, state: NodeState) {
        *self.state.lock() = state;
    }

    async fn join_room(&self, _room: &RoomId) -> RoomLease {
        // The same shape as the cluster's sids: unique per boot, no randomness needed.
        let n = self.next_sid.fetch_add(1, Ordering::Relaxed);
        RoomLease { sid: RoomSid(format!("RM_{}_{n}", self.me.boot)), peers: Vec::new(), verified: true }
    }

    fn leave_room(&self, _room: &RoomId, _peers_hold_it: bool) {}

    fn send(&self, _to: &NodeId, _message: PeerMessage) {}

    fn broadcast(&self, _message: PeerMessage) {}

    fn linked_peers(&self) -> Vec<NodeId> {
        Vec::new()
    }

    fn clock_ms(&self) -> u64 {
        crate::clock::unix_ms()
    }

    fn room_nodes(&self, _room: &RoomId) -> Vec<NodeId> {
        Vec::new()
    }

    fn pick_node(&self) -> Option<NodeRecord> {
        None
    }

    fn take_events(&self) -> Option<mpsc::Receiver<ClusterEvent>> {
        None
    }

    fn health(&self) -> Health {
        Health::Local
    }

    async fn unregister(&self) {}
}
