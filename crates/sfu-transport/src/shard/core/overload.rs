//! Shedding forwarding work when the shard falls behind its socket: sfu-core's
//! [`OverloadGuard`](sfu_core::OverloadGuard) decides from the socket's backlog, every
//! subscriber's video on this shard is capped accordingly, and /metrics shows the level.

use std::time::{Duration, Instant};

use super::ShardCore;

/// How often the socket's backlog is measured.
pub(crate) const BACKLOG_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

impl ShardCore {
    /// The socket's receive backlog was measured at `now` (see [`BACKLOG_SAMPLE_INTERVAL`]).
    pub fn handle_receive_backlog(&mut self, backlog: usize, now: Instant) {
        let Some(level) = self.overload.on_backlog(backlog, now) else { return };
        if level > 0 {
            tracing::warn!(shard = self.index, level, backlog, "shard behind its socket: shedding video layers");
        } else {
            tracing::info!(shard = self.index, backlog, "shard keeping up again: no layer shed");
        }
        self.metrics.shed_level.set(f64::from(level));
        self.metrics.shed_level_changes.increment(1);
        // Each forwarder moves to its new target at the next keyframe; it asks for one with the
        // next packet of the track.
        for fanout in self.fanouts.values_mut() {
            for subscription in fanout.subscriptions_mut() {
                subscription.forwarder.set_shed_levels(level);
            }
        }
    }
}
