//! Links to other nodes, shard side: opened and closed on the control plane's word (every shard
//! gets the same `OpenLink` / `CloseLink`).

use std::time::Instant;

use super::ShardCore;
use crate::relay::{LinkId, LinkSpec};

impl ShardCore {
    /// A link came up: this shard builds its own SRTP contexts from the link's keys.
    pub(super) fn open_link(&mut self, spec: &LinkSpec) {
        match self.relay.open_link(spec) {
            Ok(()) => tracing::info!(shard = self.index, link = spec.link.0, peer = %spec.peer, "relay link open"),
            Err(error) => tracing::error!(shard = self.index, link = spec.link.0, %error, "relay link keys refused"),
        }
    }

    /// A link went down: nothing crosses it any more.
    pub(super) fn close_link(&mut self, link: LinkId, now: Instant) {
        if !self.relay.links.contains_key(&link) {
            return;
        }
        let peer = self.relay.links.get(&link).map(|l| l.peer.clone()).unwrap_or_default();
        self.remove_relay_outs_of(link, now);
        for key in self.relay.close_link(link) {
            self.forget_published(key);
        }
        tracing::info!(shard = self.index, link = link.0, peer, "relay link closed");
    }
}
