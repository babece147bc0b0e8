//! Tells the cluster how loaded this node is, for its heartbeat (other nodes pick the least
//! loaded when they send a client elsewhere).

use std::sync::Arc;
use std::time::Duration;

use sfu_cluster::{Cluster, NodeLoad};

use crate::room::Hub;

/// As often as the heartbeat that writes it.
const REPORT_INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    loop {
        tick.tick().await;
        let load = NodeLoad {
            // The shards' busy share and forwarding rate are not measured yet: participants
            // (against limits.participants_per_node) stand for the load meanwhile.
            busy: 0.0,
            forwarded_pps: 0,
            participants: u32::try_from(hub.member_count()).unwrap_or(u32::MAX),
            rooms: u32::try_from(hub.room_count()).unwrap_or(u32::MAX),
            capacity: u32::try_from(hub.limits().participants_per_node).unwrap_or(u32::MAX),
        };
        hub.cluster.report_load(load);
    }
}
