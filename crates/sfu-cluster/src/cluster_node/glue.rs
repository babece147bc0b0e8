//! The task joining membership and mesh: the registry's live nodes become the mesh's peer list,
//! and both sides' news become [`ClusterEvent`]s for the signaling layer.
//!
//! The registry adds peers; only links remove them. A peer missing from one beat's node list
//! (Redis flushed, and the peer has not beaten since; or the peer cut off from Redis) keeps its
//! link while the link is alive: Redis only coordinates, and losing it must not split a room.
//!
//! A link that drops is given [`DOWN_GRACE`] to come back before its node's participants are
//! reported gone: a reset link (a full queue, a brief network cut) then costs a resync, not a
//! wave of leaves and joins. A node that restarted (another boot) or left the registry is gone
//! at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use crate::cluster::ClusterEvent;
use crate::membership::{MembershipEvent, NodeEntry};
use crate::mesh::{DownReason, MeshEvent, MeshHandle};
use crate::{BootId, NodeId};

/// Events waiting for the signaling layer's event task.
pub const EVENT_QUEUE: usize = 4096;
/// How long a dropped link may take to come back before its node counts as gone.
pub const DOWN_GRACE: Duration = Duration::from_secs(2);

pub struct Glue {
    mesh: MeshHandle,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::Sender<ClusterEvent>,
    /// Linked peers and their boots.
    up: HashMap<NodeId, BootId>,
    /// Dropped links waiting out their grace.
    going: HashMap<NodeId, (BootId, Instant)>,
    /// Every peer the registry listed, as last listed.
    known: HashMap<NodeId, (BootId, SocketAddr)>,
}

impl Glue {
    pub fn new(mesh: MeshHandle, shared: Arc<Mutex<Shared>>, events: mpsc::Sender<ClusterEvent>) -> Self {
        Glue { mesh, shared, events, up: HashMap::new(), going: HashMap::new(), known: HashMap::new() }
    }

    async fn emit(&self, event: ClusterEvent) {
        // The signaling layer reads promptly; waiting here holds back the mesh, not the media.
        let _ = self.events.send(event).await;
    }

    async fn on_membership(&mut self, event: MembershipEvent) {
        match event {
            MembershipEvent::Nodes { nodes, .. } => self.on_nodes(&nodes),
            MembershipEvent::Joined { room, sid, peers, .. } | MembershipEvent::RoomPeers { room, sid, peers } => {
                let nodes = peers.into_iter().map(|l| l.node).collect();
                self.emit(ClusterEvent::RoomPeers { room, sid, nodes }).await;
            }
            MembershipEvent::Health(health) => self.emit(ClusterEvent::Health(health)).await,
            MembershipEvent::RegistryRebuilt => {
                tracing::warn!("cluster: Redis had lost this node's key (flushed or restarted); written back")
            }
            MembershipEvent::Unregistered => tracing::info!("cluster: unregistered"),
        }
    }

    /// The registry's live nodes, and the peers still linked or in their grace, are who the
    /// mesh links to.
    fn on_nodes(&mut self, nodes: &[NodeEntry]) {
        let me = self.mesh.me().clone();
        let listed: HashMap<NodeId, (BootId, SocketAddr)> = nodes
            .iter()
            .filter(|e| e.node != me)
            .filter_map(|e| {
                let addr = e.fields.get("relay_addr")?.parse().ok()?;
                Some((e.node.clone(), (e.boot()?, addr)))
            })
            .collect();
        metrics::gauge!("sfu_cluster_peers_listed").set(listed.len() as f64);
        let (up, going) = (&self.up, &self.going);
        self.known.retain(|node, _| up.contains_key(node) || going.contains_key(node));
        self.known.extend(listed);
        let peers = self.known.iter().map(|(node, (boot, addr))| (node.clone(), boot.clone(), *addr)).collect();
        self.mesh.set_peers(peers);
    }

    async fn on_mesh(&mut self, event: MeshEvent) {
        match event {
            MeshEvent::PeerUp { node, boot, keys, shards, .. } => {
                self.shared.lock().refused.remove(&node);
                if let Some((old_boot, _)) = self.going.remove(&node)
                    && old_boot != boot
                {
                    // Came back as a new run: the old one's participants are gone.
                    self.emit(ClusterEvent::PeerDown { node: node.clone() }).await;
                }
                self.up.insert(node.clone(), boot.clone());
                self.emit(ClusterEvent::PeerUp { node, boot, keys, shards }).await;
            }
            MeshEvent::PeerDown { node, boot, reason } => {
                if self.up.get(&node) != Some(&boot) {
                    return;
                }
                self.up.remove(&node);
                match reason {
                    DownReason::Restarted | DownReason::Unlisted | DownReason::Shutdown => {
                        self.emit(ClusterEvent::PeerDown { node }).await
                    }
                    _ => {
                        self.going.insert(node, (boot, Instant::now() + DOWN_GRACE));
                    }
                }
            }
            MeshEvent::Message { from, message } => self.emit(ClusterEvent::Peer { from, message }).await,
            MeshEvent::AuthFailed { addr, node, reason } => {
                tracing::warn!(%addr, node = ?node, ?reason, "cluster: relay link refused");
                if let Some(node) = node
                    && reason.counts()
                {
                    self.shared.lock().refused.insert(node);
                }
            }
        }
    }

    /// Links whose grace ran out: their nodes are gone.
    async fn expire(&mut self, now: Instant) {
        let due: Vec<NodeId> = self.going.iter().filter(|(_, (_, at))| *at <= now).map(|(n, _)| n.clone()).collect();
        for node in due {
            self.going.remove(&node);
            self.emit(ClusterEvent::PeerDown { node }).await;
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.going.values().map(|(_, at)| *at).min()
    }
}

pub async fn run(mut glue: Glue, mut membership: mpsc::Receiver<MembershipEvent>, mut mesh: mpsc::Receiver<MeshEvent>) {
    loop {
        let expiry = glue.next_expiry();
        tokio::select! {
            event = membership.recv() => match event {
                Some(event) => glue.on_membership(event).await,
                None => return,
            },
            event = mesh.recv() => match event {
                Some(event) => glue.on_mesh(event).await,
                None => return,
            },
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now)), if expiry.is_some() => {
                glue.expire(Instant::now()).await
            }
        }
    }
}
