//! Layers over a link (docs/cluster.md, "Layers over the link"). Only the layers the receiving
//! node's subscribers use cross, each joining at a keyframe; what they ask for joins the
//! publisher's dynacast; and since a layer that does not cross is never seen there, the
//! publisher's node says which layers its publisher sends.
//!
//! Publisher's node: `set_relay_layers` (the peer's `RelayDemand`, passed on by the control
//! planes) and the `LayersActive` check. Receiving node: `relay_layers_active`, handed by the
//! relay track's shard to every shard with subscribers (`AvailableLayers`).

use sfu_core::LayerSet;
use std::time::{Duration, Instant};

use super::ShardCore;
use crate::TrackKey;
use crate::api::MediaEvent;
use crate::relay::LinkId;
use crate::shard::command::Command;
use crate::shard::published::{DemandFrom, Source};

/// How often the publisher's node looks whether the layers of a track that crosses links
/// changed.
pub(crate) const LAYERS_ACTIVE_CHECK: Duration = Duration::from_millis(500);

impl ShardCore {
    /// Publisher's node: the far side of `link` uses `used` of track `key` and asks for at most
    /// `wanted`. New layers cross from their keyframes (asked for now), unused ones stop
    /// crossing two seconds later; `wanted` joins the publisher's dynacast demand.
    pub(super) fn set_relay_layers(
        &mut self,
        key: TrackKey,
        link: LinkId,
        used: LayerSet,
        wanted: Option<u8>,
        now: Instant,
    ) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let Some(out) = published.relay_outs.iter_mut().find(|out| out.link == link) else { return };
        let joining = out.set_used(used, now);
        match wanted {
            Some(layer) => published.demand.insert(DemandFrom::Link(link), layer),
            None => published.demand.remove(&DemandFrom::Link(link)),
        };
        self.apply_demand(key, now);
        self.request_keyframes(key, joining, now);
    }

    /// Publisher's node, every [`LAYERS_ACTIVE_CHECK`]: tracks that cross links and whose
    /// publisher now sends other layers than last said.
    pub(super) fn check_layers_active(&mut self, now: Instant) {
        let mut changed = Vec::new();
        for (key, published) in self.published.iter_mut().filter(|(_, p)| !p.relay_outs.is_empty()) {
            let layers: LayerSet = published.activity.recently_seen(now).into_iter().collect();
            if published.layers_told != Some(layers) {
                published.layers_told = Some(layers);
                changed.push((*key, layers));
            }
        }
        for (key, layers) in changed {
            self.emit(MediaEvent::LayersActive { key, layers });
        }
    }

    /// Receiving node, on relay track `key`'s shard: the publisher sends `layers`. Every shard
    /// with subscribers of it is told.
    pub(super) fn relay_layers_active(&mut self, key: TrackKey, layers: LayerSet, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let Source::Relay(relay) = &mut published.source else { return };
        relay.available = Some(layers);
        let shards: Vec<usize> = published.downstream.keys().copied().collect();
        for shard in shards {
            self.send_to_shard(shard, Command::AvailableLayers { key, layers }, now);
        }
    }

    /// The layers of relay track `key` its publisher sends, for a shard that just attached.
    pub(super) fn relay_layers_for_attach(&self, key: TrackKey) -> Option<LayerSet> {
        match &self.published.get(&key)?.source {
            Source::Relay(relay) => relay.available,
            Source::Conn { .. } | Source::Mixer => None,
        }
    }

    /// Subscriber side: the publisher of `key` (relayed from another node) sends `layers`,
    /// whether or not they reach this node.
    pub(super) fn on_available_layers(&mut self, key: TrackKey, layers: LayerSet, now: Instant) {
        let Some(fanout) = self.fanouts.get_mut(&key) else { return };
        for subscription in fanout.subscriptions_mut() {
            subscription.forwarder.set_available_layers(Some(layers), now);
        }
        // Targets may have moved: the publisher's node is to know what is used.
        self.refresh_layer_demand(key, now);
    }
}
