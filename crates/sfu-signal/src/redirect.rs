//! Sending a client to another node (docs/cluster.md, "Redirects and draining"): a node that is
//! draining or full sends newcomers to the least-loaded serving node of its cluster, the
//! WebSocket with a `redirect` message, WHIP and WHEP with `307` and a `Location` (RFC 9725). A
//! node alone, or one whose cluster has nowhere better, serves (or refuses) as it always did.

use std::sync::Arc;

use sfu_cluster::{Cluster, NodeRecord};

use crate::state::AppState;

/// A join sent on this many times is served (or refused) where it lands: nodes whose views of
/// each other's load lag cannot bounce a client for ever.
pub const MAX_REDIRECTS: u32 = 2;

/// Where to send a newcomer instead of serving it here, if anywhere.
pub fn target(state: &Arc<AppState>, redirects: u32) -> Option<NodeRecord> {
    if redirects >= MAX_REDIRECTS {
        return None;
    }
    let hub = &state.hub;
    let full = hub.member_count() >= state.config.limits.participants_per_node;
    if !hub.is_draining() && !full {
        return None;
    }
    hub.cluster.pick_node()
}

/// A node's signaling URL (`http(s)://host:port`) as its WebSocket endpoint.
pub fn websocket_url(signal_url: &str) -> String {
    let base = signal_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/rtc")
}

/// `sfu_cluster_redirects_total{via}`.
pub fn count(via: &'static str) {
    metrics::counter!("sfu_cluster_redirects_total", "via" => via).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_urls_become_websocket_urls() {
        assert_eq!(websocket_url("http://10.0.0.2:7880"), "ws://10.0.0.2:7880/rtc");
        assert_eq!(websocket_url("https://sfu-b.example.com/"), "wss://sfu-b.example.com/rtc");
    }
}
