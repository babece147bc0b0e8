//! From the `[cluster]` settings to this node's membership: who it is, and which cluster it
//! joins (none without `cluster.redis_url`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sfu_cluster::mesh::ShardEndpoint;
use sfu_cluster::{AnyCluster, ClusterMode, ClusterSettings, NodeRecord};
use sfu_proto::{BootId, NodeId};

use crate::config::{Config, redact_url_password};
use crate::room::new_id;

/// What this node announces about itself for this run.
pub fn node_record(config: &Config) -> NodeRecord {
    // Without an announce address or a specific bind, other nodes could not reach this one by
    // what it says; loopback at least names it honestly (validate warns about cluster mode).
    let ip = config.announce_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let cluster = &config.cluster;
    NodeRecord {
        node: NodeId(cluster.node_id.clone().unwrap_or_else(|| new_id("ND"))),
        boot: BootId(new_id("BT")),
        signal_url: cluster
            .signal_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", std::net::SocketAddr::new(ip, config.http_port))),
        relay_addr: cluster.relay_addr_or(ip).to_string(),
        region: cluster.region.clone(),
    }
}

/// Starts this node's membership: alone, or in the cluster `cluster.redis_url` names.
pub fn start(config: &Config, shards: &[sfu_transport::RelayEndpoint]) -> anyhow::Result<AnyCluster> {
    let me = node_record(config);
    let Some(url) = &config.cluster.redis_url else {
        tracing::info!(node = %me.node, boot = %me.boot, "cluster: single node");
        return Ok(sfu_cluster::start(ClusterMode::Local, me)?);
    };
    let relay_port = config.cluster.relay_addr_or(config.bind).port();
    let settings = ClusterSettings {
        redis_url: url.clone(),
        secret: config.cluster.secret.as_bytes().to_vec(),
        relay_listen: SocketAddr::new(config.bind, relay_port),
        shards: shards.iter().map(|s| ShardEndpoint { media_addr: s.media, rtcp_ssrc: s.rtcp_ssrc }).collect(),
        participants_per_node: config.limits.participants_per_node,
    };
    tracing::info!(
        node = %me.node,
        boot = %me.boot,
        redis = %redact_url_password(url),
        relay_addr = %me.relay_addr,
        signal_url = %me.signal_url,
        "cluster: joining"
    );
    Ok(sfu_cluster::start(ClusterMode::Redis(settings), me)?)
}
