//! The supervisor's metrics (docs/cluster.md, "Metrics per peer", cluster-wide ones).

use metrics::{counter, gauge};

use crate::Health;

/// 1 while the last Redis command succeeded, else 0.
const REDIS_UP: &str = "sfu_cluster_redis_up";
/// Commands that got no usable answer, by `kind` (`timeout`, `connection`, `error`, `decode`),
/// and `noscript_retry`: an `EVALSHA` Redis did not know, sent again as `EVAL`.
const FAILURES: &str = "sfu_cluster_redis_failures_total";
/// Beats that found this node's key missing: Redis lost the registry and the beat rebuilt it.
const REBUILDS: &str = "sfu_cluster_registry_rebuilds_total";
/// Live nodes in the registry at the last beat, this one included.
const NODES: &str = "sfu_cluster_nodes";
/// Membership events dropped because the event receiver was full (or never taken).
const EVENTS_DROPPED: &str = "sfu_cluster_events_dropped_total";

/// The `kind` of an `EVALSHA` retried as `EVAL`.
pub(crate) const NOSCRIPT_RETRY: &str = "noscript_retry";

pub(crate) fn failure(kind: &'static str) {
    counter!(FAILURES, "kind" => kind).increment(1);
}

pub(crate) fn health(health: Health) {
    gauge!(REDIS_UP).set(if health == Health::Healthy { 1.0 } else { 0.0 });
}

pub(crate) fn registry_rebuilt() {
    counter!(REBUILDS).increment(1);
}

pub(crate) fn nodes(live: usize) {
    gauge!(NODES).set(live as f64);
}

pub(crate) fn event_dropped() {
    counter!(EVENTS_DROPPED).increment(1);
}
