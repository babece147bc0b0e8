//! Applies what the cluster reports to this node's rooms, as `media_events` does for the media
//! plane: peers' room events, links up and down, Redis's health. One task, so each peer's
//! messages are applied in the order they were sent.

use sfu_cluster::{ClusterEvent, Health};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::room::Hub;

pub async fn run(hub: Arc<Hub>, mut events: mpsc::Receiver<ClusterEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            ClusterEvent::Peer { from, message } => hub.on_peer_message(from, message).await,
            ClusterEvent::PeerUp { node, keys, shards, .. } => {
                tracing::info!(%node, "cluster: peer linked");
                hub.open_link(&node, &keys, &shards);
                hub.on_peer_up(&node).await
            }
            ClusterEvent::PeerDown { node } => {
                tracing::info!(%node, "cluster: peer gone");
                hub.close_link(&node);
                hub.on_peer_down(&node).await
            }
            ClusterEvent::Health(health) => {
                metrics::gauge!("sfu_cluster_redis_up").set(if health == Health::Degraded { 0.0 } else { 1.0 });
                match health {
                    Health::Degraded => tracing::warn!("cluster: Redis unreachable; rooms go on, new rooms unverified"),
                    _ => tracing::info!(?health, "cluster: Redis reachable"),
                }
            }
            ClusterEvent::RoomPeers { .. } => {}
        }
    }
}
