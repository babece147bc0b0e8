//! ICE-TCP counters: connections accepted, proven and closed (by reason), datagrams dropped on
//! their way to a TCP client (by reason), and the connections open now.

use metrics::{Counter, Gauge, counter, gauge};

use super::CloseReason;
use super::out_queue::TcpDrop;

pub(crate) struct TcpMetrics {
    /// Connections proven by an answered STUN request.
    pub authenticated: Counter,
    /// Frames read from clients and handed to the shard.
    pub frames_in: Counter,
    /// Connections held now, not proven yet and proven.
    pub unauthenticated_open: Gauge,
    pub authenticated_open: Gauge,
    closes: Closes,
    drops: Vec<Counter>,
}

impl TcpMetrics {
    /// A shard's counters (`shard` label).
    pub fn new(shard: usize) -> Self {
        let label = shard.to_string();
        Self {
            authenticated: counter!("sfu_tcp_authenticated_total", "shard" => label.clone()),
            frames_in: counter!("sfu_tcp_frames_received_total", "shard" => label.clone()),
            unauthenticated_open: gauge!("sfu_tcp_connections", "shard" => label.clone(), "state" => "unauthenticated"),
            authenticated_open: gauge!("sfu_tcp_connections", "shard" => label.clone(), "state" => "authenticated"),
            closes: Closes::new(&label),
            drops: TcpDrop::ALL
                .iter()
                .map(|r| counter!("sfu_tcp_dropped_datagrams_total", "shard" => label.clone(), "reason" => r.as_str()))
                .collect(),
        }
    }

    pub fn closed(&self, reason: CloseReason) {
        self.closes.count(reason);
    }

    pub fn dropped(&self, reason: TcpDrop, count: u64) {
        if let Some(c) = TcpDrop::ALL.iter().position(|r| *r == reason).and_then(|i| self.drops.get(i)) {
            c.increment(count);
        }
    }
}

/// `sfu_tcp_closed_total` by reason, for one `shard` label.
struct Closes(Vec<Counter>);

impl Closes {
    fn new(shard: &str) -> Self {
        let label = shard.to_owned();
        Self(
            CloseReason::ALL
                .iter()
                .map(|r| counter!("sfu_tcp_closed_total", "shard" => label.clone(), "reason" => r.as_str()))
                .collect(),
        )
    }

    fn count(&self, reason: CloseReason) {
        if let Some(c) = CloseReason::ALL.iter().position(|r| *r == reason).and_then(|i| self.0.get(i)) {
            c.increment(1);
        }
    }
}

/// Counters of the node's listener.
pub(crate) struct ListenerMetrics {
    /// Connections accepted on the ICE-TCP port.
    pub accepted: Counter,
    /// Connections waiting for their first frame now.
    pub pending: Gauge,
    /// Closes before a shard took the connection (`shard="listener"`).
    closes: Closes,
}

impl ListenerMetrics {
    pub fn new() -> Self {
        Self {
            accepted: counter!("sfu_tcp_accepted_total"),
            pending: gauge!("sfu_tcp_pending_connections"),
            closes: Closes::new("listener"),
        }
    }

    pub fn closed(&self, reason: CloseReason) {
        self.closes.count(reason);
    }
}
