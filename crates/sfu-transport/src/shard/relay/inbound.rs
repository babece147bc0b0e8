//! What a shard keeps of a track it receives over a link, beyond what every published track
//! has: where it comes from, and the layer demand of this node's subscribers that goes back to
//! the publisher's node (docs/cluster.md, "Layers over the link").

use sfu_core::LayerSet;
use std::collections::HashMap;
use std::net::SocketAddr;

use crate::relay::LinkId;

/// The demand of one shard's subscribers of a track: the highest layer they ask for (dynacast),
/// and the layers their forwarders are on or moving to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Demand {
    pub wanted: Option<u8>,
    pub used: LayerSet,
}

impl Demand {
    pub fn is_empty(&self) -> bool {
        self.wanted.is_none() && self.used.is_empty()
    }
}

/// A relay track's source.
pub(crate) struct RelayIn {
    pub link: LinkId,
    /// Layer `i` arrives as `ssrcs[i]`.
    pub ssrcs: Vec<u32>,
    /// Where its packets last came from (authenticated): NACKs and PLIs go back there.
    pub peer: Option<SocketAddr>,
    /// Each shard's subscribers' demand.
    demand: HashMap<usize, Demand>,
    /// The node-wide demand as last told to the control plane.
    told: Demand,
    /// The layers the publisher's node says the publisher sends (`LayersActive`), passed to every
    /// shard that subscribes.
    pub available: Option<LayerSet>,
}

impl RelayIn {
    pub fn new(link: LinkId, ssrcs: Vec<u32>) -> Self {
        Self { link, ssrcs, peer: None, demand: HashMap::new(), told: Demand::default(), available: None }
    }

    /// Shard `shard`'s subscribers now demand `demand`; returns the node-wide demand when it
    /// changed (to tell the publisher's node).
    pub fn on_demand(&mut self, shard: usize, demand: Demand) -> Option<Demand> {
        if demand.is_empty() {
            self.demand.remove(&shard);
        } else {
            self.demand.insert(shard, demand);
        }
        let union = self.demand.values().fold(Demand::default(), |all, d| Demand {
            wanted: all.wanted.max(d.wanted),
            used: all.used.union(d.used),
        });
        (union != self.told).then(|| {
            self.told = union;
            union
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(wanted: Option<u8>, used: &[u8]) -> Demand {
        Demand { wanted, used: used.iter().copied().collect() }
    }

    #[test]
    fn the_node_wide_demand_is_the_union_told_only_when_it_changes() {
        let mut relay = RelayIn::new(LinkId(1), vec![10, 11, 12]);
        assert_eq!(relay.on_demand(0, demand(Some(0), &[0])), Some(demand(Some(0), &[0])));
        assert_eq!(relay.on_demand(1, demand(Some(2), &[0, 2])), Some(demand(Some(2), &[0, 2])));
        assert_eq!(relay.on_demand(0, demand(Some(0), &[0])), None, "nothing new");
        assert_eq!(relay.on_demand(1, Demand::default()), Some(demand(Some(0), &[0])), "shard 1's subscribers left");
        assert_eq!(relay.on_demand(0, Demand::default()), Some(Demand::default()), "nobody here wants it");
    }
}
