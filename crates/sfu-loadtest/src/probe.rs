//! Figures from outside the harness: the server's CPU and memory from /proc, its counters from
//! GET /metrics (Prometheus text), and the harness's own CPU use per thread.

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::relay_metrics::{self, RelayByPeer};
use crate::series_label::label;

/// Clock ticks per second for /proc CPU times (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a process or thread, in seconds, from a /proc/.../stat file.
pub fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(0) ppid(1) ... utime is field 14 overall -> index 11 here, stime 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// Resident set size in MiB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Total and idle jiffies of the whole machine, from /proc/stat.
pub fn machine_cpu() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    Some((total, idle))
}

/// The counters the report uses, summed over labels other than `reason`.
#[derive(Clone, Debug, Default)]
pub struct ServerMetrics {
    pub forwarded_packets: f64,
    pub received_packets: f64,
    /// Payload bytes received from publishers (relayed media is counted in `relay`).
    pub received_bytes: f64,
    pub dropped_by_reason: BTreeMap<String, f64>,
    pub udp_send_failures: f64,
    pub nack_received: f64,
    pub retransmitted: f64,
    pub pli_sent: f64,
    pub unroutable: f64,
    /// Bandwidth estimation (when the server has it): transport-cc reports processed (the count
    /// of the estimate summary) and their sum, layer changes made by the allocator, probes.
    pub estimate_count: f64,
    pub estimate_sum: f64,
    pub allocation_switches: f64,
    pub probe_packets: f64,
    pub bandwidth_pauses: f64,
    /// The server's own forwarding delay (socket read to the `sendmmsg` of each copy), seconds:
    /// the worst shard's median and 99th percentile over the exporter's rolling window (about the
    /// last minute).
    pub forward_delay_p50: Option<f64>,
    pub forward_delay_p99: Option<f64>,
    /// The same up to each packet's last copy (how long a fan-out takes).
    pub fanout_delay_p50: Option<f64>,
    pub fanout_delay_p99: Option<f64>,
    /// Cluster nodes: what crossed each link, by peer node id.
    pub relay: RelayByPeer,
}

impl ServerMetrics {
    pub fn parse(text: &str) -> Self {
        let mut m = ServerMetrics::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some((s, v)) => (s.trim(), v.trim()),
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            match name {
                "sfu_forwarded_packets_total" => m.forwarded_packets += value,
                "sfu_received_packets_total" => m.received_packets += value,
                "sfu_received_bytes_total" => m.received_bytes += value,
                "sfu_udp_send_failures_total" => m.udp_send_failures += value,
                "sfu_nack_received_total" => m.nack_received += value,
                "sfu_retransmitted_packets_total" => m.retransmitted += value,
                "sfu_pli_sent_total" => m.pli_sent += value,
                "sfu_unroutable_datagrams_total" => m.unroutable += value,
                "sfu_subscriber_estimate_bps_count" => m.estimate_count += value,
                "sfu_subscriber_estimate_bps_sum" => m.estimate_sum += value,
                "sfu_allocation_changes_total" => m.allocation_switches += value,
                "sfu_probe_packets_total" => m.probe_packets += value,
                "sfu_track_pauses_total" if label(labels, "reason").as_deref() == Some("bandwidth") => {
                    m.bandwidth_pauses += value
                }
                "sfu_forward_delay_seconds" | "sfu_fanout_delay_seconds" => {
                    let fanout = name == "sfu_fanout_delay_seconds";
                    let slot = match (label(labels, "quantile").as_deref(), fanout) {
                        (Some("0.5"), false) => &mut m.forward_delay_p50,
                        (Some("0.99"), false) => &mut m.forward_delay_p99,
                        (Some("0.5"), true) => &mut m.fanout_delay_p50,
                        (Some("0.99"), true) => &mut m.fanout_delay_p99,
                        _ => continue,
                    };
                    *slot = Some(slot.map_or(value, |v: f64| v.max(value)));
                }
                // Load shed before the router sees it, listed with the router's drops.
                "sfu_udp_receive_drops_total" => {
                    *m.dropped_by_reason.entry("udp_receive_buffer_full".into()).or_insert(0.0) += value;
                }
                "sfu_forward_queue_drops_total" => {
                    *m.dropped_by_reason.entry("forward_queue_full".into()).or_insert(0.0) += value;
                }
                "sfu_dropped_packets_total" => {
                    let reason = label(labels, "reason").unwrap_or_else(|| "unknown".into());
                    *m.dropped_by_reason.entry(reason).or_insert(0.0) += value;
                }
                _ => {
                    relay_metrics::add_series(&mut m.relay, name, labels, value);
                }
            }
        }
        m
    }

    /// The sum of several nodes' counters (the windowed delays: the worst node's).
    pub fn sum<'a>(nodes: impl IntoIterator<Item = &'a ServerMetrics>) -> ServerMetrics {
        let mut m = ServerMetrics::default();
        let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for n in nodes {
            m.forwarded_packets += n.forwarded_packets;
            m.received_packets += n.received_packets;
            m.received_bytes += n.received_bytes;
            for (reason, v) in &n.dropped_by_reason {
                *m.dropped_by_reason.entry(reason.clone()).or_insert(0.0) += v;
            }
            m.udp_send_failures += n.udp_send_failures;
            m.nack_received += n.nack_received;
            m.retransmitted += n.retransmitted;
            m.pli_sent += n.pli_sent;
            m.unroutable += n.unroutable;
            m.estimate_count += n.estimate_count;
            m.estimate_sum += n.estimate_sum;
            m.allocation_switches += n.allocation_switches;
            m.probe_packets += n.probe_packets;
            m.bandwidth_pauses += n.bandwidth_pauses;
            m.forward_delay_p50 = worst(m.forward_delay_p50, n.forward_delay_p50);
            m.forward_delay_p99 = worst(m.forward_delay_p99, n.forward_delay_p99);
            m.fanout_delay_p50 = worst(m.fanout_delay_p50, n.fanout_delay_p50);
            m.fanout_delay_p99 = worst(m.fanout_delay_p99, n.fanout_delay_p99);
            for (peer, c) in &n.relay {
                m.relay.entry(peer.clone()).or_default().add(c);
            }
        }
        m
    }

    /// `self - earlier`, per counter.
    pub fn since(&self, earlier: &ServerMetrics) -> ServerMetrics {
        let mut drops = BTreeMap::new();
        for (reason, v) in &self.dropped_by_reason {
            let before = earlier.dropped_by_reason.get(reason).copied().unwrap_or(0.0);
            drops.insert(reason.clone(), (v - before).max(0.0));
        }
        ServerMetrics {
            forwarded_packets: self.forwarded_packets - earlier.forwarded_packets,
            received_packets: self.received_packets - earlier.received_packets,
            received_bytes: self.received_bytes - earlier.received_bytes,
            dropped_by_reason: drops,
            udp_send_failures: self.udp_send_failures - earlier.udp_send_failures,
            nack_received: self.nack_received - earlier.nack_received,
            retransmitted: self.retransmitted - earlier.retransmitted,
            pli_sent: self.pli_sent - earlier.pli_sent,
            unroutable: self.unroutable - earlier.unroutable,
            estimate_count: self.estimate_count - earlier.estimate_count,
            estimate_sum: self.estimate_sum - earlier.estimate_sum,
            allocation_switches: self.allocation_switches - earlier.allocation_switches,
            probe_packets: self.probe_packets - earlier.probe_packets,
            bandwidth_pauses: self.bandwidth_pauses - earlier.bandwidth_pauses,
            // Windowed figures, not counters: the later reading stands.
            forward_delay_p50: self.forward_delay_p50,
            forward_delay_p99: self.forward_delay_p99,
            fanout_delay_p50: self.fanout_delay_p50,
            fanout_delay_p99: self.fanout_delay_p99,
            relay: relay_metrics::since_all(&self.relay, &earlier.relay),
        }
    }
}

/// GET `path` over plain HTTP/1.1 and return the body.
pub async fn http_get(authority: &str, path: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), fetch).await.map_err(|_| anyhow::anyhow!("timed out"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("malformed HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        anyhow::bail!("GET {path}: {status}");
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok(if chunked { dechunk(body) } else { body.to_owned() })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let text = "# TYPE sfu_forwarded_packets_total counter\n\
            sfu_forwarded_packets_total{shard=\"0\"} 10\n\
            sfu_forwarded_packets_total{shard=\"1\"} 5\n\
            sfu_dropped_packets_total{reason=\"not_connected\",shard=\"0\"} 3\n\
            sfu_dropped_packets_total{shard=\"1\",reason=\"not_connected\"} 4\n\
            sfu_dropped_packets_total{reason=\"paused\",shard=\"1\"} 1\n\
            sfu_probe_packets_total{shard=\"0\"} 30\n\
            sfu_allocation_changes_total{shard=\"0\",direction=\"up\"} 2\n\
            sfu_allocation_changes_total{shard=\"0\",direction=\"down\"} 1\n\
            sfu_track_pauses_total{shard=\"0\",reason=\"bandwidth\"} 6\n\
            sfu_track_pauses_total{shard=\"0\",reason=\"overload\"} 9\n";
        let m = ServerMetrics::parse(text);
        assert_eq!((m.probe_packets, m.allocation_switches, m.bandwidth_pauses), (30.0, 3.0, 6.0));
        assert_eq!(m.forwarded_packets, 15.0);
        assert_eq!(m.dropped_by_reason["not_connected"], 7.0);
        assert_eq!(m.dropped_by_reason["paused"], 1.0);
        assert_eq!(m.forward_delay_p50, None);
    }

    #[test]
    fn takes_the_worst_shards_forwarding_delay() {
        let text = "sfu_forward_delay_seconds{shard=\"0\",quantile=\"0.5\"} 0.0004\n\
            sfu_forward_delay_seconds{shard=\"0\",quantile=\"0.99\"} 0.002\n\
            sfu_forward_delay_seconds{shard=\"1\",quantile=\"0.5\"} 0.0007\n\
            sfu_forward_delay_seconds{shard=\"1\",quantile=\"0.9\"} 0.009\n\
            sfu_forward_delay_seconds{shard=\"1\",quantile=\"0.99\"} 0.001\n\
            sfu_forward_delay_seconds_count{shard=\"1\"} 12\n\
            sfu_fanout_delay_seconds{shard=\"0\",quantile=\"0.5\"} 0.003\n\
            sfu_fanout_delay_seconds{shard=\"0\",quantile=\"0.99\"} 0.006\n";
        let m = ServerMetrics::parse(text);
        assert_eq!(m.forward_delay_p50, Some(0.0007));
        assert_eq!(m.forward_delay_p99, Some(0.002));
        assert_eq!((m.fanout_delay_p50, m.fanout_delay_p99), (Some(0.003), Some(0.006)));
    }

    #[test]
    fn sums_nodes() {
        let a = ServerMetrics::parse(
            "sfu_forwarded_packets_total{shard=\"0\"} 10\n\
             sfu_received_bytes_total{shard=\"0\"} 1000\n\
             sfu_forward_delay_seconds{shard=\"0\",quantile=\"0.5\"} 0.001\n\
             sfu_relay_bytes_total{shard=\"0\",peer=\"b\",direction=\"out\"} 400\n",
        );
        let b = ServerMetrics::parse(
            "sfu_forwarded_packets_total{shard=\"0\"} 5\n\
             sfu_forward_delay_seconds{shard=\"0\",quantile=\"0.5\"} 0.003\n\
             sfu_relay_bytes_total{shard=\"0\",peer=\"a\",direction=\"in\"} 390\n",
        );
        let sum = ServerMetrics::sum([&a, &b]);
        assert_eq!((sum.forwarded_packets, sum.received_bytes), (15.0, 1000.0));
        assert_eq!(sum.forward_delay_p50, Some(0.003));
        assert_eq!((sum.relay["b"].bytes_out, sum.relay["a"].bytes_in), (400.0, 390.0));
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"), "abcdef");
    }

    #[test]
    fn reads_own_cpu() {
        assert!(process_cpu_seconds(std::process::id()).is_some());
        assert!(rss_mb(std::process::id()).unwrap() > 0.0);
    }
}
