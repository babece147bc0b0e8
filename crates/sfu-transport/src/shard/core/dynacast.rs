//! Dynacast across shards: each subscriber shard tells a track's publisher shard the highest
//! layer its local subscribers ask for (and the layers they use, which a relayed track's
//! publisher node needs); the publisher shard keeps the maximum over all shards and links and
//! lets sfu-core's [`Dynacast`] decide which layers the publisher encodes. A relay track has no
//! dynacast of its own: its shard sums the demand up for the publisher's node instead.

use sfu_core::{Dynacast, EncodeLayers};
use std::time::Instant;

use super::ShardCore;
use crate::api::MediaEvent;
use crate::shard::command::Command;
use crate::shard::published::{DemandFrom, Source};
use crate::shard::relay::inbound::Demand;
use crate::{ConnId, TrackKey};

impl ShardCore {
    /// Subscriber side: recomputes what this shard's subscribers of `key` ask for and use, and
    /// tells the track's shard when it changed (nothing, once nobody here wants the track).
    pub(super) fn refresh_layer_demand(&mut self, key: TrackKey, now: Instant) {
        let mut demand = Demand::default();
        for subscription in self.fanouts.get(&key).into_iter().flat_map(|fanout| fanout.subscriptions()) {
            let forwarder = &subscription.forwarder;
            let requested = forwarder.requested_layer();
            demand.wanted = demand.wanted.max(requested);
            // A track of one layer (audio, or video without simulcast) is used whenever it is
            // wanted: its forwarder names a layer only once a packet came, and across a link
            // no packet comes until the layer is said to be used.
            let single = forwarder.layer_count() <= 1;
            let in_use = [forwarder.current_layer(), forwarder.target_layer(), requested.filter(|_| single)];
            for layer in in_use.into_iter().flatten() {
                demand.used = demand.used.with(layer);
            }
        }
        let previous = match demand.is_empty() {
            true => self.layer_demand.remove(&key),
            false => self.layer_demand.insert(key, demand),
        };
        if previous.unwrap_or_default() != demand {
            let command = Command::LayerDemand { key, shard: self.index, wanted: demand.wanted, used: demand.used };
            self.send_to_shard(key.shard(), command, now);
        }
    }

    /// Publisher side: `from` now wants at most layer `wanted` of `key`.
    pub(super) fn on_layer_demand(&mut self, key: TrackKey, from: DemandFrom, demand: Demand, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        if let (Source::Relay(relay), DemandFrom::Shard(shard)) = (&mut published.source, from) {
            if let Some(Demand { wanted, used }) = relay.on_demand(shard, demand) {
                self.emit(MediaEvent::RelayDemand { key, used, wanted });
            }
            return;
        }
        match demand.wanted {
            Some(layer) => published.demand.insert(from, layer),
            None => published.demand.remove(&from),
        };
        self.apply_demand(key, now);
    }

    /// Hands a track's highest demand to its dynacast, and tells the publisher what changed.
    pub(super) fn apply_demand(&mut self, key: TrackKey, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let highest = published.demand.values().copied().max();
        let Some(conn) = published.conn() else { return };
        let Some(dynacast) = published.dynacast.as_mut() else { return };
        if let Some(encode) = dynacast.set_wanted(highest, now) {
            self.tell_publisher(key, encode);
        }
        self.rearm_dynacast(conn);
    }

    /// Publisher side: pauses the layers of `conn`'s tracks that nobody wanted for long enough.
    pub(super) fn on_dynacast_timeout(&mut self, conn: ConnId, now: Instant) {
        let due = self
            .conns
            .get(&conn)
            .and_then(|c| c.role.publisher())
            .and_then(|p| p.dynacast_deadline)
            .is_some_and(|at| at <= now);
        if !due {
            return;
        }
        let mut changes = Vec::new();
        for (key, published) in self.published.iter_mut().filter(|(_, p)| p.conn() == Some(conn)) {
            if let Some(encode) = published.dynacast.as_mut().and_then(|d| d.handle_timeout(now)) {
                changes.push((*key, encode));
            }
        }
        for (key, encode) in changes {
            self.tell_publisher(key, encode);
        }
        self.rearm_dynacast(conn);
    }

    /// A new simulcast track starts with every layer encoded and nobody wanting any yet.
    pub(super) fn new_dynacast(&self, layer_count: usize, now: Instant) -> Option<Dynacast> {
        (self.dynacast && layer_count > 1).then(|| Dynacast::new(layer_count, now))
    }

    /// Files `conn` under its tracks' earliest dynacast deadline (applied at the next drain).
    pub(super) fn rearm_dynacast(&mut self, conn: ConnId) {
        let deadline = self
            .published
            .values()
            .filter(|p| p.conn() == Some(conn))
            .filter_map(|p| p.dynacast.as_ref()?.poll_timeout())
            .min();
        if let Some(publisher) = self.conns.get_mut(&conn).and_then(|c| c.role.publisher_mut()) {
            publisher.dynacast_deadline = deadline;
        }
        self.mark_dirty(conn);
    }

    fn tell_publisher(&mut self, key: TrackKey, encode: EncodeLayers) {
        let Some(published) = self.published.get(&key) else { return };
        let layers = (0..published.layers.len())
            .filter_map(|i| {
                let layer = u8::try_from(i).ok()?;
                let rid = published.layers.rid_at(layer)?;
                Some((sfu_proto::Rid(rid.to_owned()), encode.is_active(layer)))
            })
            .collect();
        tracing::debug!(track = ?key, highest = ?encode.highest, "dynacast");
        self.metrics.dynacast_changes.increment(1);
        let Some(conn) = published.conn() else { return };
        self.emit(MediaEvent::EncodeLayers { conn, key, layers });
    }
}
