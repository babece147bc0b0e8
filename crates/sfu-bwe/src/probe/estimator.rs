//! Measures what a probe cluster achieved, from the feedback about its packets.
//!
//! Send rate is the cluster's bytes over its send span; receive rate the bytes over its arrival
//! span (each excluding the one packet at the span's edge). If the receiver got it markedly slower
//! than it was sent (< [`SATURATED_RATIO`]) the burst filled the bottleneck and the receive rate
//! *is* the capacity: take [`SATURATED_FRACTION`] of it to sit just below. Otherwise the path had
//! room for the whole burst: the probe proves `min(send, receive)`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ProbeCluster;
use crate::Bitrate;

/// Fewer received packets than this can not time a rate.
pub(crate) const MIN_RECEIVED_PACKETS: u32 = 4;
/// At least this share of the burst's packets must arrive; more loss means congestion, not a
/// measurement.
pub(crate) const MIN_RECEIVED_SHARE: f64 = 0.8;
/// Receive/send ratio below which the link counts as saturated by the probe.
pub(crate) const SATURATED_RATIO: f64 = 0.9;
/// Share of a saturated receive rate taken as the result.
pub(crate) const SATURATED_FRACTION: f64 = 0.95;
/// Receive faster than twice the send rate is a timing artefact: discard.
pub(crate) const MAX_RECEIVE_SEND_RATIO: f64 = 2.0;
/// Spans longer than this are not a burst.
pub(crate) const MAX_SPAN: Duration = Duration::from_secs(1);
/// A cluster whose feedback is still incomplete this long after its last packet is judged with
/// what arrived.
pub(crate) const RESULT_TIMEOUT: Duration = Duration::from_secs(1);

/// A finished measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeOutcome {
    pub cluster: ProbeCluster,
    /// The proven rate, or `None` if the burst could not be measured.
    pub result: Option<Bitrate>,
    /// The burst filled the bottleneck (received markedly slower than sent): capacity found.
    pub saturated: bool,
}

#[derive(Debug)]
struct Cluster {
    cluster: ProbeCluster,
    started: Instant,
    sent_packets: u32,
    sent_bytes: usize,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_send_size: usize,
    reported: u32,
    recv_packets: u32,
    recv_bytes: usize,
    first_arrival: Option<(Duration, usize)>,
    last_arrival: Option<Duration>,
}

impl Cluster {
    fn last_activity(&self) -> Instant {
        self.last_send.unwrap_or(self.started)
    }

    fn sending_done(&self) -> bool {
        self.sent_packets as usize >= self.cluster.min_packets && self.sent_bytes >= self.cluster.min_bytes
    }

    /// The proven rate, and whether the link was saturated.
    fn measure(&self) -> Option<(Bitrate, bool)> {
        let min_recv = MIN_RECEIVED_PACKETS.max((self.sent_packets as f64 * MIN_RECEIVED_SHARE).ceil() as u32);
        if self.recv_packets < min_recv {
            return None;
        }
        let send_span = self.last_send?.duration_since(self.first_send?);
        let (first_arrival, first_size) = self.first_arrival?;
        let recv_span = self.last_arrival?.checked_sub(first_arrival)?;
        if send_span.is_zero() || recv_span.is_zero() || send_span > MAX_SPAN || recv_span > MAX_SPAN {
            return None;
        }
        let send = Bitrate::from_bytes((self.sent_bytes - self.last_send_size) as u64, send_span)?;
        let recv = Bitrate::from_bytes((self.recv_bytes - first_size) as u64, recv_span)?;
        if recv.as_f64() > MAX_RECEIVE_SEND_RATIO * send.as_f64() {
            return None;
        }
        if recv.as_f64() < SATURATED_RATIO * send.as_f64() {
            Some((recv * SATURATED_FRACTION, true))
        } else {
            Some((send.min(recv), false))
        }
    }
}

/// Tracks the clusters in flight.
#[derive(Debug, Default)]
pub(crate) struct ProbeEstimator {
    clusters: VecDeque<Cluster>,
}

impl ProbeEstimator {
    /// Start tracking a cluster handed to the caller.
    pub fn start(&mut self, cluster: ProbeCluster, now: Instant) {
        self.clusters.push_back(Cluster {
            cluster,
            started: now,
            sent_packets: 0,
            sent_bytes: 0,
            first_send: None,
            last_send: None,
            last_send_size: 0,
            reported: 0,
            recv_packets: 0,
            recv_bytes: 0,
            first_arrival: None,
            last_arrival: None,
        });
    }

    /// A packet of cluster `id` went out.
    pub fn on_sent(&mut self, id: u32, size: usize, at: Instant) {
        let Some(c) = self.find(id) else { return };
        c.sent_packets += 1;
        c.sent_bytes += size;
        c.first_send.get_or_insert(at);
        if c.last_send.is_none_or(|t| at >= t) {
            c.last_send = Some(at);
            c.last_send_size = size;
        }
    }

    /// A packet of cluster `id` was reported.
    pub fn on_report(&mut self, id: u32, size: usize, arrival: Option<Duration>) {
        let Some(c) = self.find(id) else { return };
        c.reported += 1;
        let Some(a) = arrival else { return };
        c.recv_packets += 1;
        c.recv_bytes += size;
        if c.first_arrival.is_none_or(|(f, _)| a < f) {
            c.first_arrival = Some((a, size));
        }
        c.last_arrival = c.last_arrival.max(Some(a));
    }

    /// Collect clusters that are complete (fully sent and fully reported) or timed out.
    pub fn poll_outcome(&mut self, now: Instant) -> Option<ProbeOutcome> {
        let idx = self.clusters.iter().position(|c| {
            let complete = c.sending_done() && c.reported >= c.sent_packets;
            let stale = now.saturating_duration_since(c.last_activity()) >= RESULT_TIMEOUT;
            complete || stale
        })?;
        let c = self.clusters.remove(idx)?;
        let m = c.measure();
        Some(ProbeOutcome { cluster: c.cluster, result: m.map(|m| m.0), saturated: m.is_some_and(|m| m.1) })
    }

    /// When the oldest in-flight cluster times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clusters.iter().map(|c| c.last_activity()).min().map(|t| t + RESULT_TIMEOUT)
    }

    fn find(&mut self, id: u32) -> Option<&mut Cluster> {
        self.clusters.iter_mut().find(|c| c.cluster.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send `n` packets of 1250 bytes at `send_kbps`; they arrive spaced for `recv_kbps`, the
    /// `lost` first ones missing. Returns the measured kbit/s.
    fn probe(send_kbps: u64, recv_kbps: u64, n: u32, lost: u32) -> Option<u64> {
        let t0 = Instant::now();
        let mut e = ProbeEstimator::default();
        let cluster = ProbeCluster::new(7, Bitrate::kbps(send_kbps), Duration::from_millis(30), 5);
        e.start(cluster, t0);
        let send_gap = Duration::from_secs_f64(10.0 / send_kbps as f64);
        let recv_gap = Duration::from_secs_f64(10.0 / recv_kbps as f64);
        for i in 0..n {
            e.on_sent(7, 1250, t0 + send_gap * i);
        }
        for i in 0..n {
            let arrival = (i >= lost).then(|| Duration::from_secs(5) + recv_gap * i);
            e.on_report(7, 1250, arrival);
        }
        let out = e.poll_outcome(t0)?;
        out.result.map(|b| (b.as_f64() / 1000.0).round() as u64)
    }

    #[test]
    fn outcome_table() {
        // (send kbps, recv kbps, packets, lost) -> result kbps
        let cases: &[(u64, u64, u32, u32, Option<u64>)] = &[
            (2000, 2000, 8, 0, Some(2000)), // unsaturated: proves the send rate
            (2000, 1900, 8, 0, Some(1900)), // within 10 %: still unsaturated, min()
            (2000, 1000, 8, 0, Some(950)),  // saturated: 95 % of what got through
            (2000, 1000, 8, 3, None),       // too much loss
            (2000, 5000, 8, 0, None),       // receive > 2x send: artefact
            (2000, 2000, 3, 0, None),       // too few packets (also not done: times out below)
        ];
        for (send, recv, n, lost, want) in cases {
            assert_eq!(probe(*send, *recv, *n, *lost), *want, "{send}->{recv} n={n} lost={lost}");
        }
    }

    #[test]
    fn incomplete_cluster_waits_then_times_out() {
        let t0 = Instant::now();
        let mut e = ProbeEstimator::default();
        e.start(ProbeCluster::new(1, Bitrate::mbps(1), Duration::from_millis(30), 5), t0);
        e.on_sent(1, 1250, t0);
        assert_eq!(e.poll_outcome(t0), None);
        assert_eq!(e.poll_timeout(), Some(t0 + RESULT_TIMEOUT));
        let out = e.poll_outcome(t0 + RESULT_TIMEOUT).unwrap();
        assert_eq!(out.result, None);
        assert_eq!(e.poll_timeout(), None);
    }
}
