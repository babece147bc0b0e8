//! Tells the cluster how loaded this node is, for its heartbeat (other nodes pick the least
//! loaded when they send a client elsewhere).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu_cluster::{Cluster, NodeLoad};

use crate::room::Hub;

/// As often as the heartbeat that writes it.
const REPORT_INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    let mut last = (sfu_transport::load::sample(), Instant::now());
    loop {
        tick.tick().await;
        let now = (sfu_transport::load::sample(), Instant::now());
        let (busy, forwarded_pps) = now.0.since(&last.0, now.1 - last.1, hub.media.shard_count());
        last = now;
        metrics::gauge!("sfu_shard_busy_share").set(f64::from(busy));
        let load = NodeLoad {
            busy,
            forwarded_pps,
            participants: u32::try_from(hub.member_count()).unwrap_or(u32::MAX),
            rooms: u32::try_from(hub.room_count()).unwrap_or(u32::MAX),
            capacity: u32::try_from(hub.limits().participants_per_node).unwrap_or(u32::MAX),
        };
        hub.cluster.report_load(load);
    }
}
