//! A cluster node's relay counters from its /metrics, per peer node: what crossed each link in
//! each direction. The server labels them `peer` (the peer's node id) and `shard`; the harness
//! sums over shards.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::series_label::label;

/// Cumulative relay counters of one link, as this node counts them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelayCounters {
    /// Media packets that arrived from the peer (new and repaired).
    pub packets_in: f64,
    /// Media packets sent to the peer (first transmissions).
    pub packets_out: f64,
    /// `packets_out` by the `layer` label (simulcast layer index; audio counts as layer 0).
    pub packets_out_by_layer: BTreeMap<String, f64>,
    /// RTP payload bytes from and to the peer.
    pub bytes_in: f64,
    pub bytes_out: f64,
    /// Packets sent again on the peer's NACK.
    pub retransmissions: f64,
    /// Packets missing from what the peer sent (each gap's packets once).
    pub lost: f64,
}

/// Relay counters by peer node id.
pub type RelayByPeer = BTreeMap<String, RelayCounters>;

/// Adds one Prometheus series to `by_peer` if it is a relay counter the report uses.
pub fn add_series(by_peer: &mut RelayByPeer, name: &str, labels: &str, value: f64) -> bool {
    let field: fn(&mut RelayCounters, Option<String>, f64) = match name {
        "sfu_relay_packets_total" => |c, direction, v| match direction.as_deref() {
            Some("in") => c.packets_in += v,
            Some("out") => c.packets_out += v,
            _ => {}
        },
        "sfu_relay_bytes_total" => |c, direction, v| match direction.as_deref() {
            Some("in") => c.bytes_in += v,
            Some("out") => c.bytes_out += v,
            _ => {}
        },
        "sfu_relay_retransmissions_total" => |c, _, v| c.retransmissions += v,
        "sfu_relay_lost_packets_total" => |c, _, v| c.lost += v,
        _ => return false,
    };
    let Some(peer) = label(labels, "peer") else { return false };
    let counters = by_peer.entry(peer).or_default();
    field(counters, label(labels, "direction"), value);
    if name == "sfu_relay_packets_total" && label(labels, "direction").as_deref() == Some("out") {
        let layer = label(labels, "layer").unwrap_or_else(|| "?".into());
        *counters.packets_out_by_layer.entry(layer).or_insert(0.0) += value;
    }
    true
}

impl RelayCounters {
    /// `self - earlier`, per counter (never negative: a restarted node's counters start again).
    pub fn since(&self, earlier: &RelayCounters) -> RelayCounters {
        let d = |now: f64, then: f64| (now - then).max(0.0);
        RelayCounters {
            packets_in: d(self.packets_in, earlier.packets_in),
            packets_out: d(self.packets_out, earlier.packets_out),
            packets_out_by_layer: self
                .packets_out_by_layer
                .iter()
                .map(|(layer, v)| {
                    (layer.clone(), d(*v, earlier.packets_out_by_layer.get(layer).copied().unwrap_or(0.0)))
                })
                .collect(),
            bytes_in: d(self.bytes_in, earlier.bytes_in),
            bytes_out: d(self.bytes_out, earlier.bytes_out),
            retransmissions: d(self.retransmissions, earlier.retransmissions),
            lost: d(self.lost, earlier.lost),
        }
    }

    /// Adds another node's or shard's counters (for sums over a cluster).
    pub fn add(&mut self, other: &RelayCounters) {
        self.packets_in += other.packets_in;
        self.packets_out += other.packets_out;
        for (layer, v) in &other.packets_out_by_layer {
            *self.packets_out_by_layer.entry(layer.clone()).or_insert(0.0) += v;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.retransmissions += other.retransmissions;
        self.lost += other.lost;
    }
}

/// Per link over an interval: `end - start` (a link first seen at the end counts from zero).
pub fn since_all(end: &RelayByPeer, start: &RelayByPeer) -> RelayByPeer {
    end.iter().map(|(peer, c)| (peer.clone(), c.since(start.get(peer).unwrap_or(&RelayCounters::default())))).collect()
}

/// One link's traffic over the hold, per second, with the repair counts over the whole hold.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkRates {
    pub peer: String,
    pub packets_in_per_s: f64,
    pub packets_out_per_s: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    pub packets_out_per_s_by_layer: BTreeMap<String, f64>,
    pub retransmissions: u64,
    pub lost_packets: u64,
}

impl LinkRates {
    /// Rates from the counters' difference over `seconds` of hold.
    pub fn from_delta(peer: &str, delta: &RelayCounters, seconds: f64) -> Self {
        let per_s = |v: f64| if seconds > 0.0 { (v / seconds * 10.0).round() / 10.0 } else { 0.0 };
        LinkRates {
            peer: peer.to_owned(),
            packets_in_per_s: per_s(delta.packets_in),
            packets_out_per_s: per_s(delta.packets_out),
            bytes_in_per_s: per_s(delta.bytes_in),
            bytes_out_per_s: per_s(delta.bytes_out),
            packets_out_per_s_by_layer: delta
                .packets_out_by_layer
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(layer, v)| (layer.clone(), per_s(*v)))
                .collect(),
            retransmissions: delta.retransmissions as u64,
            lost_packets: delta.lost as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RelayByPeer {
        let mut by_peer = RelayByPeer::new();
        for line in text.lines() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap();
            add_series(&mut by_peer, name, labels.trim_end_matches('}'), value.parse().unwrap());
        }
        by_peer
    }

    #[test]
    fn sums_shards_per_peer_and_direction() {
        let m = parse(
            "sfu_relay_packets_total{shard=\"0\",peer=\"b\",direction=\"out\",layer=\"0\"} 100\n\
             sfu_relay_packets_total{shard=\"1\",peer=\"b\",direction=\"out\",layer=\"2\"} 50\n\
             sfu_relay_packets_total{shard=\"0\",peer=\"b\",direction=\"in\",layer=\"0\"} 7\n\
             sfu_relay_packets_total{shard=\"0\",peer=\"c\",direction=\"out\",layer=\"2\"} 40\n\
             sfu_relay_bytes_total{shard=\"0\",peer=\"b\",direction=\"out\"} 1000\n\
             sfu_relay_bytes_total{shard=\"1\",peer=\"b\",direction=\"out\"} 500\n\
             sfu_relay_bytes_total{shard=\"1\",peer=\"b\",direction=\"in\"} 70\n\
             sfu_relay_retransmissions_total{shard=\"0\",peer=\"b\"} 3\n\
             sfu_relay_lost_packets_total{shard=\"1\",peer=\"c\"} 2\n\
             sfu_relay_nacks_total{shard=\"0\",peer=\"b\",direction=\"in\"} 9",
        );
        let b = &m["b"];
        assert_eq!((b.packets_out, b.packets_in, b.bytes_out, b.bytes_in), (150.0, 7.0, 1500.0, 70.0));
        assert_eq!(b.packets_out_by_layer["0"], 100.0);
        assert_eq!(b.packets_out_by_layer["2"], 50.0);
        assert_eq!((b.retransmissions, b.lost), (3.0, 0.0));
        assert_eq!((m["c"].packets_out, m["c"].lost), (40.0, 2.0));
    }

    #[test]
    fn a_link_first_seen_at_the_end_counts_from_zero() {
        let start = parse("sfu_relay_bytes_total{shard=\"0\",peer=\"b\",direction=\"out\"} 1000");
        let end = parse(
            "sfu_relay_bytes_total{shard=\"0\",peer=\"b\",direction=\"out\"} 31000\n\
             sfu_relay_bytes_total{shard=\"0\",peer=\"c\",direction=\"out\"} 600",
        );
        let delta = since_all(&end, &start);
        assert_eq!(delta["b"].bytes_out, 30000.0);
        assert_eq!(delta["c"].bytes_out, 600.0);
        let rates = LinkRates::from_delta("b", &delta["b"], 10.0);
        assert_eq!(rates.bytes_out_per_s, 3000.0);
        assert_eq!(rates.bytes_in_per_s, 0.0);
    }

    #[test]
    fn a_counter_that_went_back_gives_zero_not_a_negative_rate() {
        let start = parse("sfu_relay_packets_total{shard=\"0\",peer=\"b\",direction=\"in\",layer=\"0\"} 500");
        let end = parse("sfu_relay_packets_total{shard=\"0\",peer=\"b\",direction=\"in\",layer=\"0\"} 20");
        assert_eq!(since_all(&end, &start)["b"].packets_in, 0.0);
    }
}
