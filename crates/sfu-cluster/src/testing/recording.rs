//! A cluster that keeps what a node sends to its peers, so tests of the signaling layer can
//! carry those messages to another node by hand (and drop, reorder or cut them).

use parking_lot::Mutex;
use sfu_proto::RoomId;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, ClusterEvent};
use crate::lease::RoomLease;
use crate::membership::RoomSid;
use crate::mesh::PeerMessage;
use crate::{Health, NodeId, NodeLoad, NodeRecord, NodeState};

/// Where a recorded message was going.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    /// To one peer.
    To(NodeId, PeerMessage),
    /// To every linked peer.
    All(PeerMessage),
}

/// A node whose peer links are a list the test reads.
pub struct RecordingCluster {
    me: NodeRecord,
    sent: Mutex<Vec<Sent>>,
    left: Mutex<Vec<(RoomId, bool)>>,
    linked: Mutex<Vec<NodeId>>,
    holders: Mutex<Vec<crate::membership::LeaseMember>>,
    clock_ms: Mutex<u64>,
    next_sid: Mutex<u64>,
}

impl RecordingCluster {
    /// A node called `node`, whose clock reads `clock_ms` until told otherwise.
    pub fn new(node: &str, clock_ms: u64) -> Self {
        RecordingCluster {
            me: NodeRecord {
                node: NodeId(node.into()),
                boot: crate::BootId(format!("BT_{node}")),
                signal_url: format!("http://{node}.test"),
                relay_addr: "127.0.0.1:7882".into(),
                region: None,
            },
            sent: Mutex::new(Vec::new()),
            left: Mutex::new(Vec::new()),
            linked: Mutex::new(Vec::new()),
            holders: Mutex::new(Vec::new()),
            clock_ms: Mutex::new(clock_ms),
            next_sid: Mutex::new(1),
        }
    }

    /// Takes what was sent since the last call.
    pub fn take_sent(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.lock())
    }

    /// The rooms left so far, with whether a linked peer held each still.
    pub fn rooms_left(&self) -> Vec<(RoomId, bool)> {
        self.left.lock().clone()
    }

    /// Says which peers Redis lists as holding every room joined from now on.
    pub fn set_holders(&self, peers: &[&str]) {
        *self.holders.lock() = peers
            .iter()
            .map(|p| crate::membership::LeaseMember {
                node: NodeId((*p).into()),
                boot: crate::BootId(format!("BT_{p}")),
            })
            .collect();
    }

    /// Says which peers are linked.
    pub fn set_linked(&self, peers: &[&str]) {
        *self.linked.lock() = peers.iter().map(|p| NodeId((*p).into())).collect();
    }

    /// Sets the clock.
    pub fn set_clock_ms(&self, ms: u64) {
        *self.clock_ms.lock() = ms;
    }
}

impl Cluster for RecordingCluster {
    fn node(&self) -> &NodeRecord {
        &self.me
    }
    fn report_load(&self, _load: NodeLoad) {}
    fn set_state(&self, _state: NodeState) {}
    async fn join_room(&self, room: &RoomId) -> RoomLease {
        let mut n = self.next_sid.lock();
        *n += 1;
        let peers = self.holders.lock().clone();
        RoomLease { sid: RoomSid(format!("RM_{}_{}", room, *n)), peers, verified: true }
    }
    fn leave_room(&self, room: &RoomId, peers_hold_it: bool) {
        self.left.lock().push((room.clone(), peers_hold_it));
    }
    fn room_nodes(&self, _room: &RoomId) -> Vec<NodeId> {
        Vec::new()
    }
    fn pick_node(&self) -> Option<NodeRecord> {
        None
    }
    fn send(&self, to: &NodeId, message: PeerMessage) {
        self.sent.lock().push(Sent::To(to.clone(), message));
    }
    fn broadcast(&self, message: PeerMessage) {
        self.sent.lock().push(Sent::All(message));
    }
    fn linked_peers(&self) -> Vec<NodeId> {
        self.linked.lock().clone()
    }
    fn clock_ms(&self) -> u64 {
        *self.clock_ms.lock()
    }
    fn take_events(&self) -> Option<mpsc::Receiver<ClusterEvent>> {
        None
    }
    fn health(&self) -> Health {
        Health::Healthy
    }
    async fn unregister(&self) {}
}
