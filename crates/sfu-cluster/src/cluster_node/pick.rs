//! Where to send a client this node does not take: a pure choice over the registry.

use std::collections::HashSet;

use crate::membership::NodeEntry;
use crate::{NodeId, NodeRecord, NodeState};

/// A node as the choice sees it.
#[derive(Clone, Debug, PartialEq)]
struct Candidate {
    record: NodeRecord,
    load: f32,
}

/// The least-loaded serving node other than `me` (which asks because it will not take the
/// client: it is full or draining), preferring `me`'s region. Nodes whose link refused ours are
/// skipped (a wrong secret: clients sent there would be in a room split from ours). Load is the larger of the shards' busy share and the share of
/// its participant capacity taken (each node says its own; `participants_per_node`, ours, for
/// one that does not); ties go to the lower node id, so nodes agree.
pub fn pick_node(
    me: &NodeRecord,
    participants_per_node: usize,
    others: &[NodeEntry],
    refused: &HashSet<NodeId>,
) -> Option<NodeRecord> {
    let share = |participants: u32, capacity: u32| {
        let capacity = if capacity == 0 { participants_per_node } else { capacity as usize };
        participants as f32 / capacity.max(1) as f32
    };
    let candidates: Vec<Candidate> = others
        .iter()
        .filter(|e| e.node != me.node && !refused.contains(&e.node) && e.state() == Some(NodeState::Serving))
        .filter_map(|e| {
            let field = |k: &str| e.fields.get(k).cloned().unwrap_or_default();
            let signal_url = field("signal_url");
            if signal_url.is_empty() {
                return None;
            }
            let busy: f32 = field("busy").parse().unwrap_or(1.0);
            let participants: u32 = field("participants").parse().unwrap_or(u32::MAX);
            let capacity: u32 = field("capacity").parse().unwrap_or(0);
            let region = Some(field("region")).filter(|r| !r.is_empty());
            let record = NodeRecord {
                node: e.node.clone(),
                boot: e.boot()?,
                signal_url,
                relay_addr: field("relay_addr"),
                region,
            };
            Some(Candidate { record, load: busy.max(share(participants, capacity)) })
        })
        .collect();
    let same_region = |c: &Candidate| me.region.is_some() && c.record.region == me.region;
    candidates
        .into_iter()
        .filter(|c| c.load < 1.0)
        .min_by(|a, b| {
            same_region(b)
                .cmp(&same_region(a))
                .then(a.load.total_cmp(&b.load))
                .then_with(|| a.record.node.cmp(&b.record.node))
        })
        .map(|c| c.record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BootId;

    fn record(node: &str, region: Option<&str>) -> NodeRecord {
        NodeRecord {
            node: NodeId(node.into()),
            boot: BootId(format!("BT_{node}")),
            signal_url: format!("http://{node}"),
            relay_addr: "10.0.0.1:7882".into(),
            region: region.map(Into::into),
        }
    }

    fn entry(node: &str, state: &str, busy: f32, participants: u32, region: &str) -> NodeEntry {
        let fields = [
            ("boot", format!("BT_{node}")),
            ("state", state.to_owned()),
            ("signal_url", format!("http://{node}")),
            ("relay_addr", "10.0.0.2:7882".to_owned()),
            ("region", region.to_owned()),
            ("busy", busy.to_string()),
            ("participants", participants.to_string()),
        ];
        NodeEntry { node: NodeId(node.into()), fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }
    }

    #[test]
    fn the_least_loaded_serving_node_wins_and_draining_or_refused_ones_never_do() {
        let me = record("a", None);
        let others =
            [entry("b", "serving", 0.2, 10, ""), entry("c", "serving", 0.1, 5, ""), entry("d", "draining", 0.0, 0, "")];
        let none = HashSet::new();
        let pick = |refused: &HashSet<NodeId>| pick_node(&me, 100, &others, refused);
        assert_eq!(pick(&none).map(|r| r.node.0), Some("c".into()));
        let refused: HashSet<NodeId> = [NodeId("c".into())].into();
        assert_eq!(pick(&refused).map(|r| r.node.0), Some("b".into()));
    }

    #[test]
    fn participants_count_against_the_node_limit_and_a_full_node_is_no_choice() {
        let me = record("a", None);
        let others = [
            entry("a", "serving", 0.0, 0, ""),
            entry("b", "serving", 0.0, 90, ""),
            entry("c", "serving", 0.0, 100, ""),
        ];
        let got = pick_node(&me, 100, &others, &HashSet::new());
        assert_eq!(got.map(|r| r.node.0), Some("b".into()), "never itself, however idle its last beat said it was");
        let got = pick_node(&me, 100, &others[2..], &HashSet::new());
        assert_eq!(got, None, "the only other node is full");
    }

    #[test]
    fn each_node_is_judged_by_its_own_capacity() {
        let me = record("a", None);
        let mut big = entry("b", "serving", 0.0, 50, "");
        big.fields.insert("capacity".into(), "1000".into());
        let got = pick_node(&me, 10, &[big], &HashSet::new());
        assert_eq!(got.map(|r| r.node.0), Some("b".into()), "50 of 1000, not 50 of our 10");
    }

    #[test]
    fn the_same_region_comes_first_then_ties_go_to_the_lower_id() {
        let me = record("a", Some("eu"));
        let others = [
            entry("b", "serving", 0.5, 0, "eu"),
            entry("c", "serving", 0.1, 0, "us"),
            entry("d", "serving", 0.5, 0, "eu"),
        ];
        let got = pick_node(&me, 100, &others, &HashSet::new());
        assert_eq!(got.map(|r| r.node.0), Some("b".into()));
    }
}
