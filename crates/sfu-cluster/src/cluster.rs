//! The one interface the signaling layer sees, whether the node runs alone or in a cluster.

use std::future::Future;

use sfu_proto::RoomId;
use tokio::sync::mpsc;

use crate::lease::RoomLease;
use crate::membership::RoomSid;
use crate::mesh::{LinkKeys, PeerMessage, ShardEndpoint};
use crate::{Health, NodeId, NodeLoad, NodeRecord, NodeState};

/// What the cluster tells the signaling layer, taken from [`Cluster::take_events`].
#[derive(Debug)]
pub enum ClusterEvent {
    /// A link to a peer node is up (authenticated; keys derived). Send it a snapshot of the
    /// rooms held here.
    PeerUp {
        /// The peer.
        node: NodeId,
        /// Its incarnation.
        boot: crate::BootId,
        /// The link's keys, for the media relay.
        keys: LinkKeys,
        /// Its shards' relay media endpoints.
        shards: Vec<ShardEndpoint>,
    },
    /// The link to a peer node is gone: its participants have left.
    PeerDown {
        /// The peer.
        node: NodeId,
    },
    /// A message from a peer node, in the order it sent them.
    Peer {
        /// The sender.
        from: NodeId,
        /// What it says.
        message: PeerMessage,
    },
    /// Redis's health changed (never `Local` in cluster mode).
    Health(Health),
    /// Who holds a room besides this node, and its record's sid, as Redis last said.
    RoomPeers {
        /// The room.
        room: RoomId,
        /// Its record's id.
        sid: RoomSid,
        /// Other nodes holding it.
        nodes: Vec<NodeId>,
    },
}

/// Membership of this node among others: a local implementation for one node, a Redis one for a
/// cluster, picked by [`crate::start`]. Never fails because the coordinator is away: a cluster
/// node keeps serving what it has and reports [`Health::Degraded`].
pub trait Cluster: Send + Sync + 'static {
    /// Who this node is.
    fn node(&self) -> &NodeRecord;
    /// Keeps this node's load; written at the next heartbeat.
    fn report_load(&self, load: NodeLoad);
    /// Serving or draining; announced at once.
    fn set_state(&self, state: NodeState);
    /// The first local participant of `room` arrived: take a lease on it and learn its sid.
    fn join_room(&self, room: &RoomId) -> impl Future<Output = RoomLease> + Send;
    /// The last local participant of `room` left. `peers_hold_it`: a linked peer holds the room
    /// still, so its record must stay even if Redis shows no lease (that peer may be cut off
    /// from Redis).
    fn leave_room(&self, room: &RoomId, peers_hold_it: bool);
    /// Live nodes other than this one holding `room`.
    fn room_nodes(&self, room: &RoomId) -> Vec<NodeId>;
    /// Where to send a client this node does not take (it is full or draining): the
    /// least-loaded serving node other than this one; `None` when there is none.
    fn pick_node(&self) -> Option<NodeRecord>;
    /// Sends to one linked peer, in order; dropped if there is no link (the peer resyncs with a
    /// snapshot when it links again).
    fn send(&self, to: &NodeId, message: PeerMessage);
    /// Sends to every linked peer.
    fn broadcast(&self, message: PeerMessage);
    /// The peers linked now.
    fn linked_peers(&self) -> Vec<NodeId>;
    /// Milliseconds since the Unix epoch on the cluster's clock (this node's clock corrected by
    /// its offset to Redis's), so that nodes compare join times on one clock.
    fn clock_ms(&self) -> u64;
    /// The event stream, handed out once (to the task that applies it to rooms).
    fn take_events(&self) -> Option<mpsc::Receiver<ClusterEvent>>;
    /// Whether the coordinator answers.
    fn health(&self) -> Health;
    /// End of a drain: removes this node's entries from the coordinator at once (rather than
    /// letting them expire), waiting at most a couple of seconds.
    fn unregister(&self) -> impl Future<Output = ()> + Send;
}
