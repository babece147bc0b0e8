//! Paces one [`ProbeCluster`] onto the wire: when the next probe packet is due, and when the
//! burst is complete.
//!
//! The sender's media keeps flowing during a burst and is tagged with the cluster too, so it
//! counts towards the burst's size; probe packets fill in at the cluster's target rate.

use std::time::{Duration, Instant};

use super::ProbeCluster;

/// How long to wait before retrying when the sender had nothing to probe with (no recent
/// packet to re-send yet).
pub const RETRY_WHEN_EMPTY: Duration = Duration::from_millis(10);

/// A burst that has not completed in this many cluster durations is abandoned: the sender
/// could not find packets to send, and a late half-burst would measure nothing useful.
const GIVE_UP_AFTER_DURATIONS: u32 = 10;

/// The least a burst is given before it is abandoned.
const MIN_GIVE_UP: Duration = Duration::from_millis(500);

/// The sending side of one probe burst.
#[derive(Debug, Clone)]
pub struct ProbePacer {
    cluster: ProbeCluster,
    bytes: usize,
    packets: usize,
    next_send: Instant,
    give_up_at: Instant,
}

impl ProbePacer {
    /// Starts pacing `cluster` at `now`: the first probe packet is due at once.
    pub fn new(cluster: ProbeCluster, now: Instant) -> Self {
        let give_up = (cluster.duration * GIVE_UP_AFTER_DURATIONS).max(MIN_GIVE_UP);
        ProbePacer { cluster, bytes: 0, packets: 0, next_send: now, give_up_at: now + give_up }
    }

    /// The cluster id to tag every packet sent meanwhile with.
    pub fn cluster_id(&self) -> u32 {
        self.cluster.id
    }

    /// When the next probe packet is due (or, once expired, when to drop the burst).
    pub fn poll_timeout(&self) -> Instant {
        self.next_send.min(self.give_up_at)
    }

    /// Whether a probe packet should go out at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        !self.is_done() && !self.has_expired(now) && now >= self.next_send
    }

    /// A probe packet of `size` bytes went out at `now`: the next is due when `size` bytes at
    /// the target rate have drained.
    pub fn on_probe_sent(&mut self, size: usize, now: Instant) {
        self.count(size);
        let gap = self.cluster.target.time_for(size).unwrap_or(RETRY_WHEN_EMPTY);
        // Pace from the schedule, not from `now`, so a late timer does not slow the burst; but
        // never schedule into the past, which would send a clump.
        self.next_send = (self.next_send + gap).max(now);
    }

    /// A media packet tagged with this cluster went out: it counts towards the burst.
    pub fn on_media_sent(&mut self, size: usize) {
        self.count(size);
    }

    /// The sender had nothing to send as a probe at `now`; try again shortly.
    pub fn on_nothing_to_send(&mut self, now: Instant) {
        self.next_send = now + RETRY_WHEN_EMPTY;
    }

    /// The burst has reached its size in bytes and in packets.
    pub fn is_done(&self) -> bool {
        self.bytes >= self.cluster.min_bytes && self.packets >= self.cluster.min_packets
    }

    /// The burst ran far past its intended length without completing; drop it.
    pub fn has_expired(&self, now: Instant) -> bool {
        now >= self.give_up_at
    }

    fn count(&mut self, size: usize) {
        self.bytes += size;
        self.packets += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bitrate;

    fn cluster(kbps: u64) -> ProbeCluster {
        ProbeCluster::new(7, Bitrate::kbps(kbps), Duration::from_millis(30), 5)
    }

    #[test]
    fn paces_packets_at_the_target_rate_until_the_burst_is_complete() {
        let start = Instant::now();
        // 1 Mbit/s for 30 ms = 3750 bytes; 1000-byte packets are 8 ms apart.
        let mut pacer = ProbePacer::new(cluster(1000), start);
        let mut now = start;
        let mut sent = 0;
        while !pacer.is_done() {
            assert!(pacer.is_due(now), "due at {:?}", now - start);
            pacer.on_probe_sent(1000, now);
            sent += 1;
            now = pacer.poll_timeout();
        }
        // Five packets at least (min_packets), even though four carry the bytes.
        assert_eq!(sent, 5);
        assert_eq!(now - start, Duration::from_millis(40));
        assert!(!pacer.is_due(now));
    }

    #[test]
    fn media_counts_towards_the_burst() {
        let now = Instant::now();
        let mut pacer = ProbePacer::new(cluster(1000), now);
        for _ in 0..4 {
            pacer.on_media_sent(1200);
        }
        assert!(!pacer.is_done(), "four packets are fewer than min_packets");
        pacer.on_probe_sent(100, now);
        assert!(pacer.is_done());
    }

    #[test]
    fn a_burst_with_nothing_to_send_retries_then_expires() {
        let start = Instant::now();
        let mut pacer = ProbePacer::new(cluster(1000), start);
        pacer.on_nothing_to_send(start);
        assert!(!pacer.is_due(start));
        assert!(pacer.is_due(start + RETRY_WHEN_EMPTY));
        assert!(pacer.has_expired(start + MIN_GIVE_UP));
        assert!(!pacer.is_due(start + MIN_GIVE_UP));
        assert_eq!(pacer.poll_timeout(), start + RETRY_WHEN_EMPTY);
    }

    #[test]
    fn a_late_timer_catches_up_by_one_packet_not_a_clump() {
        let start = Instant::now();
        let mut pacer = ProbePacer::new(cluster(1000), start);
        pacer.on_probe_sent(1000, start);
        // The timer fires 100 ms late: the missed packet and the current one go now, the next
        // one a gap later.
        let late = start + Duration::from_millis(100);
        assert!(pacer.is_due(late));
        pacer.on_probe_sent(1000, late);
        assert_eq!(pacer.poll_timeout(), late);
        pacer.on_probe_sent(1000, late);
        assert_eq!(pacer.poll_timeout(), late + Duration::from_millis(8));
    }
}
