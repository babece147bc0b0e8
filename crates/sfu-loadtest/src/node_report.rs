//! The report's section per node (runs with several `--url`): where the subscribers went, each
//! node's CPU, forwarding and publisher ingest, and what crossed each of its relay links over
//! the hold.

use serde::Serialize;

use crate::nodes::NodeSnapshot;
use crate::relay_metrics::LinkRates;

/// One node's share of the run, as the run collected it.
pub struct NodeOutcome {
    pub url: String,
    pub pid: Option<u32>,
    pub publishers: usize,
    pub subscribers: usize,
    /// At the start and the end of the hold.
    pub start: NodeSnapshot,
    pub end: NodeSnapshot,
    pub rss_mb: Option<f64>,
    /// Subscriber connections placed here that received media, and their packets.
    pub with_media: usize,
    pub expected: u64,
    pub missing: u64,
}

/// One node's figures over the hold.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeFigures {
    pub url: String,
    pub pid: Option<u32>,
    pub publishers: usize,
    pub subscribers: usize,
    pub subscribers_with_media: usize,
    /// Over the whole run, of the subscribers placed here.
    pub loss_pct: Option<f64>,
    /// Percent of one core over the hold.
    pub cpu_pct: Option<f64>,
    pub rss_mb: Option<f64>,
    /// Copies sent to subscribers (relayed packets not included).
    pub forwarded_pps: Option<f64>,
    /// Media from publishers connected here (relayed media not included).
    pub received_pps: Option<f64>,
    pub received_bytes_per_s: Option<f64>,
    pub relay: Vec<LinkRates>,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The figures over `seconds` of hold, from the counters at its start and end.
pub fn figures(n: &NodeOutcome, seconds: f64) -> NodeFigures {
    let per_s = |v: f64| if seconds > 0.0 { Some(round1(v / seconds)) } else { None };
    let delta = match (&n.end.metrics, &n.start.metrics) {
        (Some(end), Some(start)) => Some(end.since(start)),
        _ => None,
    };
    let cpu_pct = match (n.end.cpu, n.start.cpu) {
        (Some(end), Some(start)) if seconds > 0.0 => Some(round1((end - start) / seconds * 100.0)),
        _ => None,
    };
    NodeFigures {
        url: n.url.clone(),
        pid: n.pid,
        publishers: n.publishers,
        subscribers: n.subscribers,
        subscribers_with_media: n.with_media,
        loss_pct: (n.expected > 0).then(|| (n.missing as f64 / n.expected as f64 * 100_000.0).round() / 1000.0),
        cpu_pct,
        rss_mb: n.rss_mb.map(round1),
        forwarded_pps: delta.as_ref().and_then(|d| per_s(d.forwarded_packets)),
        received_pps: delta.as_ref().and_then(|d| per_s(d.received_packets)),
        received_bytes_per_s: delta.as_ref().and_then(|d| per_s(d.received_bytes)),
        relay: delta
            .as_ref()
            .map(|d| d.relay.iter().map(|(peer, c)| LinkRates::from_delta(peer, c, seconds)).collect())
            .unwrap_or_default(),
    }
}

/// Two markdown tables: the nodes, then their links (one row per node and peer).
pub fn markdown(nodes: &[NodeFigures]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v}"));
    let mut md = String::from(
        "\n### Per node (over the hold)\n\n| node | pid | publishers / subscribers (with media) | loss % | CPU % of a core | forwarded pps | publisher ingest pps / bytes/s |\n|---|---|---|---|---|---|---|\n",
    );
    for n in nodes {
        md.push_str(&format!(
            "| {} | {} | {} / {} ({}) | {} | {} | {} | {} / {} |\n",
            n.url,
            n.pid.map_or("-".to_owned(), |p| p.to_string()),
            n.publishers,
            n.subscribers,
            n.subscribers_with_media,
            opt(n.loss_pct),
            opt(n.cpu_pct),
            opt(n.forwarded_pps),
            opt(n.received_pps),
            opt(n.received_bytes_per_s),
        ));
    }
    if nodes.iter().all(|n| n.relay.is_empty()) {
        md.push_str("\nNo relay counters on any node (not a cluster, or nothing crossed).\n");
        return md;
    }
    md.push_str(
        "\n| node | peer | relay out pkt/s (by layer) / bytes/s | relay in pkt/s / bytes/s | retransmissions out | lost in |\n|---|---|---|---|---|---|\n",
    );
    for n in nodes {
        for l in &n.relay {
            let layers: Vec<String> = l.packets_out_per_s_by_layer.iter().map(|(k, v)| format!("L{k} {v}")).collect();
            md.push_str(&format!(
                "| {} | {} | {} ({}) / {} | {} / {} | {} | {} |\n",
                n.url,
                l.peer,
                l.packets_out_per_s,
                if layers.is_empty() { "-".to_owned() } else { layers.join(", ") },
                l.bytes_out_per_s,
                l.packets_in_per_s,
                l.bytes_in_per_s,
                l.retransmissions,
                l.lost_packets,
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ServerMetrics;

    fn snapshot(text: &str, cpu: f64) -> NodeSnapshot {
        NodeSnapshot { metrics: Some(ServerMetrics::parse(text)), cpu: Some(cpu) }
    }

    fn origin() -> NodeOutcome {
        NodeOutcome {
            url: "http://127.0.0.1:17880".into(),
            pid: Some(7),
            publishers: 1,
            subscribers: 2,
            start: snapshot(
                "sfu_forwarded_packets_total{shard=\"0\"} 1000\n\
                 sfu_received_packets_total{shard=\"0\"} 500\n\
                 sfu_received_bytes_total{shard=\"0\"} 400000\n\
                 sfu_relay_packets_total{shard=\"0\",peer=\"bench-b\",direction=\"out\",layer=\"2\"} 100\n\
                 sfu_relay_bytes_total{shard=\"0\",peer=\"bench-b\",direction=\"out\"} 100000\n",
                3.0,
            ),
            end: snapshot(
                "sfu_forwarded_packets_total{shard=\"0\"} 3000\n\
                 sfu_received_packets_total{shard=\"0\"} 2500\n\
                 sfu_received_bytes_total{shard=\"0\"} 2400000\n\
                 sfu_relay_packets_total{shard=\"0\",peer=\"bench-b\",direction=\"out\",layer=\"2\"} 1100\n\
                 sfu_relay_packets_total{shard=\"0\",peer=\"bench-b\",direction=\"out\",layer=\"0\"} 500\n\
                 sfu_relay_bytes_total{shard=\"0\",peer=\"bench-b\",direction=\"out\"} 1100000\n\
                 sfu_relay_retransmissions_total{shard=\"0\",peer=\"bench-b\"} 4\n",
                4.5,
            ),
            rss_mb: Some(40.04),
            with_media: 2,
            expected: 4000,
            missing: 2,
        }
    }

    #[test]
    fn rates_over_the_hold_from_the_counters_difference() {
        let f = figures(&origin(), 10.0);
        assert_eq!(f.cpu_pct, Some(15.0));
        assert_eq!(f.forwarded_pps, Some(200.0));
        assert_eq!((f.received_pps, f.received_bytes_per_s), (Some(200.0), Some(200_000.0)));
        assert_eq!(f.loss_pct, Some(0.05));
        assert_eq!(f.relay.len(), 1);
        let link = &f.relay[0];
        assert_eq!(link.peer, "bench-b");
        assert_eq!((link.packets_out_per_s, link.bytes_out_per_s, link.packets_in_per_s), (150.0, 100_000.0, 0.0));
        assert_eq!(link.packets_out_per_s_by_layer["2"], 100.0);
        assert_eq!(link.packets_out_per_s_by_layer["0"], 50.0);
        assert_eq!(link.retransmissions, 4);
        let md = markdown(&[f]);
        assert!(
            md.contains("| http://127.0.0.1:17880 | bench-b | 150 (L0 50, L2 100) / 100000 | 0 / 0 | 4 | 0 |"),
            "{md}"
        );
    }

    #[test]
    fn missing_counters_give_no_figures_rather_than_zeros() {
        let mut n = origin();
        n.start = NodeSnapshot::default();
        n.expected = 0;
        let f = figures(&n, 10.0);
        assert_eq!((f.cpu_pct, f.forwarded_pps, f.loss_pct), (None, None, None));
        assert!(f.relay.is_empty());
        assert!(markdown(&[f]).contains("No relay counters"));
        assert_eq!(figures(&origin(), 0.0).cpu_pct, None);
    }
}
