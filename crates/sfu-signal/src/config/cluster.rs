//! `[cluster]`: how this node joins others (docs/cluster.md) and how it stops. Without
//! `redis_url` the node runs alone, as it always did; draining applies to a single node too:
//! SIGTERM lets calls end before it exits.

use std::net::IpAddr;

use serde::Deserialize;

/// Shortest `cluster.secret`: the links' keys are derived from it, so it must resist guessing.
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;
/// Default TCP port of the node-to-node control connection.
pub const DEFAULT_RELAY_PORT: u16 = 7882;

/// Settings of this node among others, and of its shutdown.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Turns cluster mode on: the Redis that coordinates the nodes (`redis://host:6379/0`).
    pub redis_url: Option<String>,
    /// Shared by every node of the cluster; the links' keys come from it. Required in cluster
    /// mode, at least [`MIN_CLUSTER_SECRET_BYTES`] bytes. Never sent anywhere.
    pub secret: String,
    /// This node's name. Default: `ND_` and random characters, new at every start. A fixed name
    /// is allowed; each start still gets a new boot id, so nothing of an earlier run is inherited.
    pub node_id: Option<String>,
    /// `host:port` other nodes dial for the control connection. Default: the announce address
    /// (else `bind`) and port 7882.
    pub relay_addr: Option<String>,
    /// Where redirected clients are sent: this node's public signaling URL. Default:
    /// `http://<announce or bind>:<http_port>`; set it behind TLS or a load balancer.
    pub signal_url: Option<String>,
    /// Stored with this node's entry; when picking a node for a client, nodes of the same region
    /// come first.
    pub region: Option<String>,
    /// After SIGTERM, how long the node keeps serving the sessions it has (taking no new ones)
    /// before it closes them with 1001 `going_away` and exits; it exits sooner once all have
    /// ended. 0: close at once. Default 30.
    pub drain_timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            secret: String::new(),
            node_id: None,
            relay_addr: None,
            signal_url: None,
            region: None,
            drain_timeout_secs: 30,
        }
    }
}

// By hand: the secret must never reach a log line.
impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &self.redis_url.as_deref().map(redact_url_password))
            .field("secret", &if self.secret.is_empty() { "" } else { "<set>" })
            .field("node_id", &self.node_id)
            .field("relay_addr", &self.relay_addr)
            .field("signal_url", &self.signal_url)
            .field("region", &self.region)
            .field("drain_timeout_secs", &self.drain_timeout_secs)
            .finish()
    }
}

impl ClusterConfig {
    /// Whether the node joins a cluster (a Redis URL is configured).
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<String> {
        let url = self.redis_url.as_deref()?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://")) {
            return Some(format!(
                "cluster.redis_url {:?} is not a Redis URL (redis://host:port/db)",
                redact_url_password(url)
            ));
        }
        if self.secret.len() < MIN_CLUSTER_SECRET_BYTES {
            return Some(format!(
                "cluster.secret is {} bytes; cluster mode needs one of at least \
                 {MIN_CLUSTER_SECRET_BYTES}, the same on every node (SFU_CLUSTER__SECRET)",
                self.secret.len()
            ));
        }
        if let Some(id) = &self.node_id
            && !valid_node_id(id)
        {
            return Some(format!(
                "cluster.node_id {id:?} must be 1 to 64 characters of letters, digits, '_', '-' or '.'"
            ));
        }
        if let Some(addr) = &self.relay_addr
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Some(format!("cluster.relay_addr {addr:?} is not an ip:port address"));
        }
        if let Some(url) = &self.signal_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Some(format!("cluster.signal_url {url:?} must start with http:// or https://"));
        }
        None
    }

    /// The control connection's address: `relay_addr`, else `ip` (announce or bind) and 7882.
    pub fn relay_addr_or(&self, ip: IpAddr) -> std::net::SocketAddr {
        self.relay_addr
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(std::net::SocketAddr::new(ip, DEFAULT_RELAY_PORT))
    }
}

/// Node names go into Redis keys and metrics labels: a short, plain alphabet.
fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// `redis://user:pass@host` -> `redis://user:***@host`, for messages and logs.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}
