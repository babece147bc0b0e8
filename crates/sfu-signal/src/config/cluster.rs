//! `[cluster]`: how this node stops, and (once cluster mode is built, docs/cluster.md) how it
//! joins others. Draining applies to a single node too: SIGTERM lets calls end before it exits.

use serde::Deserialize;

/// Settings of this node among others, and of its shutdown.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// After SIGTERM, how long the node keeps serving the sessions it has (taking no new ones)
    /// before it closes them with 1001 `going_away` and exits; it exits sooner once all have
    /// ended. 0: close at once. Default 30.
    pub drain_timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { drain_timeout_secs: 30 }
    }
}
