//! Read-only views of a core's state, for what a scenario asserts beyond what its clients see.
//! A child of the core's module, so it reads the core's fields without widening them.

use crate::remote::Remote;
use crate::shard::core::ShardCore;
use crate::shard::demux::Route;
use crate::{ConnId, TrackKey};

impl ShardCore {
    /// Every place the core still knows `id` from, named; empty once it is gone.
    pub(crate) fn traces_of(&self, id: ConnId) -> Vec<String> {
        let mut found = Vec::new();
        if self.conns.contains_key(&id) {
            found.push("a connection".to_owned());
        }
        if self.timers.iter().any(|(_, c)| *c == id) {
            found.push("a timer".to_owned());
        }
        if self.dirty.contains(&id) {
            found.push("the dirty list".to_owned());
        }
        if self.pending_reads.iter().any(|(c, _)| *c == id) {
            found.push("messages waiting to be handled".to_owned());
        }
        if !self.demux.addrs(id).is_empty() {
            found.push(format!("validated addresses {:?}", self.demux.addrs(id)));
        }
        for (key, fanout) in &self.fanouts {
            if fanout.get(id).is_some() {
                found.push(format!("a subscription to {key:?}"));
            }
        }
        for (key, published) in &self.published {
            if published.conn() == Some(id) {
                found.push(format!("published track {key:?}"));
            }
        }
        found
    }

    /// Every place the core still knows track `key` from, named.
    pub(crate) fn traces_of_track(&self, key: TrackKey) -> Vec<String> {
        let mut found = Vec::new();
        if self.published.contains_key(&key) {
            found.push("a published track".to_owned());
        }
        if self.fanouts.contains_key(&key) {
            found.push("a fan-out".to_owned());
        }
        if self.layer_demand.contains_key(&key) {
            found.push("a layer demand".to_owned());
        }
        found
    }

    /// The connection a datagram from `from` would be handed to.
    pub(crate) fn route_of(&self, datagram: &[u8], from: impl Into<Remote>) -> Option<ConnId> {
        match self.demux.route(datagram, from.into()) {
            Route::Validated(id) | Route::Unvalidated(id) => Some(id),
            Route::Unroutable => None,
        }
    }

    /// The addresses ICE validated for `id`, oldest first.
    pub(crate) fn validated(&self, id: ConnId) -> Vec<Remote> {
        self.demux.addrs(id).to_vec()
    }

    /// Where a subscriber connection's media goes (the ICE pair its stack selected).
    pub(crate) fn media_dest(&self, id: ConnId) -> Option<Remote> {
        self.conns.get(&id)?.role.subscriber()?.outbound.as_ref()?.dest
    }

    /// The shards a published track is sent to, with how many subscriptions each holds.
    pub(crate) fn downstream_of(&self, key: TrackKey) -> Vec<(usize, usize)> {
        let mut shards: Vec<_> =
            self.published.get(&key).map(|p| p.downstream.clone()).unwrap_or_default().into_iter().collect();
        shards.sort_unstable();
        shards
    }

    /// The highest layer of a published track each shard's subscribers want (dynacast).
    pub(crate) fn demand_of(&self, key: TrackKey) -> Vec<(usize, u8)> {
        let mut shards: Vec<_> = self
            .published
            .get(&key)
            .into_iter()
            .flat_map(|p| p.demand.iter())
            .filter_map(|(from, layer)| match from {
                crate::shard::published::DemandFrom::Shard(shard) => Some((*shard, *layer)),
                crate::shard::published::DemandFrom::Link(_) => None,
            })
            .collect();
        shards.sort_unstable();
        shards
    }

    /// The highest layer of a published track the far side of each link wants (dynacast).
    pub(crate) fn link_demand_of(&self, key: TrackKey) -> Vec<(crate::relay::LinkId, u8)> {
        let mut links: Vec<_> = self
            .published
            .get(&key)
            .into_iter()
            .flat_map(|p| p.demand.iter())
            .filter_map(|(from, layer)| match from {
                crate::shard::published::DemandFrom::Link(link) => Some((*link, *layer)),
                crate::shard::published::DemandFrom::Shard(_) => None,
            })
            .collect();
        links.sort_unstable();
        links
    }

    /// The layer forwarded to subscriber `id` of `key`, and the one it is moving to.
    pub(crate) fn forwarding(&self, id: ConnId, key: TrackKey) -> Option<(Option<u8>, Option<u8>)> {
        let forwarder = &self.fanouts.get(&key)?.get(id)?.forwarder;
        Some((forwarder.current_layer(), forwarder.target_layer()))
    }

    /// The bandwidth estimate of subscriber connection `id`, bit/s.
    pub(crate) fn estimate_of(&self, id: ConnId) -> Option<u64> {
        Some(self.conns.get(&id)?.role.subscriber()?.bwe.as_ref()?.estimator.estimate().as_u64())
    }

    /// How many video layers the shard sheds for overload.
    pub(crate) fn shed_level(&self) -> u8 {
        self.overload.level()
    }
}

/// What a shard holds of the relay, for scenarios across nodes.
impl ShardCore {
    /// What this shard counted about `link`.
    pub(crate) fn relay_stats(&self, link: crate::relay::LinkId) -> Option<&crate::shard::relay::LinkStats> {
        self.relay.links.get(&link).map(|l| &l.stats)
    }

    /// Every place the shard still knows `link` from, named; empty once it is gone.
    pub(crate) fn traces_of_link(&self, link: crate::relay::LinkId) -> Vec<String> {
        let mut found = Vec::new();
        if self.relay.links.contains_key(&link) {
            found.push("an open link".to_owned());
        }
        found.extend(
            self.relay.inbound.iter().filter(|(_, e)| e.link == link).map(|(s, _)| format!("inbound SSRC {s}")),
        );
        found.extend(self.relay.outbound.keys().filter(|(l, _)| *l == link).map(|(_, s)| format!("outbound SSRC {s}")));
        for (key, published) in &self.published {
            if published.source.link() == Some(link) {
                found.push(format!("relay track {key:?}"));
            }
            if published.relay_outs.iter().any(|out| out.link == link) {
                found.push(format!("a relay out of {key:?}"));
            }
        }
        found
    }

    /// The layers of `key` that cross `link` (or are about to).
    pub(crate) fn relay_crossing(&self, key: TrackKey, link: crate::relay::LinkId) -> Option<sfu_core::LayerSet> {
        self.published.get(&key)?.relay_outs.iter().find(|out| out.link == link).map(|out| out.crossing())
    }

    /// The links track `key` crosses from here.
    pub(crate) fn relay_outs_of(&self, key: TrackKey) -> Vec<crate::relay::LinkId> {
        self.published.get(&key).map(|p| p.relay_outs.iter().map(|out| out.link).collect()).unwrap_or_default()
    }
}
