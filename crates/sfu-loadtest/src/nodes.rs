//! The server nodes a run drives: one, or several nodes of a cluster given as `--url A,B,C`
//! (with their PIDs as `--server-pid pA,pB,pC`). Publishers join the first node, the origin;
//! subscribers go to the nodes in turn. Each node's /metrics and CPU are read every second.

use anyhow::bail;

use crate::cli::{ServerKind, ServerUrl};
use crate::probe::{self, ServerMetrics};

/// One server node: where it is and, if given, its process.
#[derive(Clone, Debug)]
pub struct Node {
    /// As given on the command line (for the report).
    pub url: String,
    pub address: ServerUrl,
    pub pid: Option<u32>,
}

/// Pairs `--url` and `--server-pid`: as many PIDs as URLs, or one (the first node's), or none.
pub fn parse_nodes(urls: &[String], pids: &[u32], server: ServerKind) -> anyhow::Result<Vec<Node>> {
    let urls: Vec<&str> = urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()).collect();
    if urls.is_empty() {
        bail!("--url names no server");
    }
    if server == ServerKind::Janus && urls.len() > 1 {
        bail!("--server janus drives one server: give one --url, not {}", urls.len());
    }
    if pids.len() > 1 && pids.len() != urls.len() {
        bail!(
            "--server-pid names {} processes for {} --url nodes: give one PID per URL, in the same order (or one, for the first)",
            pids.len(),
            urls.len()
        );
    }
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            let address = ServerUrl::parse(url).map_err(|e| anyhow::anyhow!("--url {url}: {e:#}"))?;
            Ok(Node { url: (*url).to_owned(), address, pid: pids.get(i).copied() })
        })
        .collect()
}

/// The node of the `index`-th subscriber (or meeting participant): round-robin over all nodes.
pub fn node_for(index: usize, nodes: usize) -> usize {
    index % nodes.max(1)
}

/// What is read from one node each second.
pub struct NodeProbe {
    /// Where its /metrics are (none for Janus).
    pub authority: Option<String>,
    pub pid: Option<u32>,
    /// The last /metrics read (kept when a read fails).
    pub metrics: Option<ServerMetrics>,
    /// Whether the last read of /metrics succeeded.
    pub fresh: bool,
    /// Its CPU time so far, seconds.
    pub cpu: Option<f64>,
}

impl NodeProbe {
    pub fn new(node: &Node, metrics: bool) -> Self {
        NodeProbe {
            authority: metrics.then(|| node.address.http_authority()),
            pid: node.pid,
            metrics: None,
            fresh: false,
            cpu: node.pid.and_then(probe::process_cpu_seconds),
        }
    }

    /// Reads /metrics and the CPU time; returns the error of a failed /metrics read.
    pub async fn read(&mut self) -> Option<String> {
        self.cpu = self.pid.and_then(probe::process_cpu_seconds);
        let authority = self.authority.as_deref()?;
        match probe::http_get(authority, "/metrics").await {
            Ok(text) => {
                self.metrics = Some(ServerMetrics::parse(&text));
                self.fresh = true;
                None
            }
            Err(e) => {
                self.fresh = false;
                Some(format!("{authority}: {e}"))
            }
        }
    }

    /// The figures at this moment, for the start and end of the hold.
    pub fn snapshot(&self) -> NodeSnapshot {
        NodeSnapshot { metrics: self.metrics.clone(), cpu: self.cpu }
    }
}

/// A node's counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct NodeSnapshot {
    pub metrics: Option<ServerMetrics>,
    pub cpu: Option<f64>,
}

/// Reads every node at once. Returns the sum of their /metrics when every read succeeded (a
/// sum with a node missing would look like counters going back), and the first error.
pub async fn read_all(nodes: &mut [NodeProbe]) -> (Option<ServerMetrics>, Option<String>) {
    let errors = futures_util::future::join_all(nodes.iter_mut().map(|n| n.read())).await;
    let error = errors.into_iter().flatten().next();
    let all_fresh = nodes.iter().all(|n| n.fresh && n.metrics.is_some());
    let sum = all_fresh.then(|| ServerMetrics::sum(nodes.iter().filter_map(|n| n.metrics.as_ref())));
    (sum, error)
}

/// The CPU seconds of every node with a PID, summed (none if one is unreadable or none given).
pub fn cpu_sum(nodes: &[NodeProbe]) -> Option<f64> {
    let with_pid: Vec<&NodeProbe> = nodes.iter().filter(|n| n.pid.is_some()).collect();
    if with_pid.is_empty() {
        return None;
    }
    with_pid.iter().map(|n| n.cpu).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_url_is_one_node() {
        let nodes = parse_nodes(&urls(&["http://127.0.0.1:7880"]), &[42], ServerKind::Sfu).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!((nodes[0].address.port, nodes[0].pid), (7880, Some(42)));
    }

    #[test]
    fn pids_pair_with_urls_in_order() {
        let list = urls(&["http://127.0.0.1:7880", "http://127.0.0.1:7890", "http://127.0.0.1:7900"]);
        let nodes = parse_nodes(&list, &[10, 20, 30], ServerKind::Sfu).unwrap();
        let pairs: Vec<(u16, Option<u32>)> = nodes.iter().map(|n| (n.address.port, n.pid)).collect();
        assert_eq!(pairs, vec![(7880, Some(10)), (7890, Some(20)), (7900, Some(30))]);
        // One PID belongs to the first node; none leaves every node without CPU figures.
        let one = parse_nodes(&list, &[10], ServerKind::Sfu).unwrap();
        assert_eq!(one.iter().map(|n| n.pid).collect::<Vec<_>>(), vec![Some(10), None, None]);
        assert!(parse_nodes(&list, &[], ServerKind::Sfu).unwrap().iter().all(|n| n.pid.is_none()));
    }

    #[test]
    fn refuses_mismatched_pids_janus_clusters_and_no_url() {
        let list = urls(&["http://127.0.0.1:7880", "http://127.0.0.1:7890", "http://127.0.0.1:7900"]);
        let e = parse_nodes(&list, &[10, 20], ServerKind::Sfu).unwrap_err().to_string();
        assert!(e.contains("2 processes for 3"), "{e}");
        let e = parse_nodes(&list[..2], &[], ServerKind::Janus).unwrap_err().to_string();
        assert!(e.contains("janus"), "{e}");
        assert!(parse_nodes(&urls(&["", " "]), &[], ServerKind::Sfu).is_err());
        assert!(parse_nodes(&urls(&["https://x:1"]), &[], ServerKind::Sfu).is_err());
    }

    #[test]
    fn the_cli_takes_comma_separated_and_repeated_urls_and_pids() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "sfu-loadtest",
            "livestream",
            "--url",
            "http://127.0.0.1:7880,http://127.0.0.1:7890",
            "--url",
            "http://127.0.0.1:7900",
            "--server-pid",
            "1,2",
            "--server-pid",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.urls.len(), 3);
        assert_eq!(cli.server_pids, vec![1, 2, 3]);
        let default = crate::cli::Cli::try_parse_from(["sfu-loadtest", "meeting"]).unwrap();
        assert_eq!(default.urls, vec!["http://127.0.0.1:7880".to_owned()]);
        assert!(default.server_pids.is_empty());
    }

    #[test]
    fn subscribers_go_round_robin() {
        let placed: Vec<usize> = (0..7).map(|i| node_for(i, 3)).collect();
        assert_eq!(placed, vec![0, 1, 2, 0, 1, 2, 0]);
        // Two nodes and 20 subscribers: 10 each.
        let on_first = (0..20).filter(|&i| node_for(i, 2) == 0).count();
        assert_eq!(on_first, 10);
        assert!((0..5).all(|i| node_for(i, 1) == 0));
    }

    #[test]
    fn cpu_sums_nodes_with_pids_only() {
        let probe =
            |pid: Option<u32>, cpu: Option<f64>| NodeProbe { authority: None, pid, metrics: None, fresh: false, cpu };
        assert_eq!(cpu_sum(&[probe(Some(1), Some(2.0)), probe(None, None), probe(Some(3), Some(1.5))]), Some(3.5));
        assert_eq!(cpu_sum(&[probe(Some(1), Some(2.0)), probe(Some(3), None)]), None);
        assert_eq!(cpu_sum(&[probe(None, None)]), None);
    }
}
