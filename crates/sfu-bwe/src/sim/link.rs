//! The bottleneck: a drop-tail FIFO served at a piecewise-constant capacity, then a fixed
//! propagation delay. Several flows share it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rng::Rng;
use crate::Bitrate;

/// Capacity over time: `(from, rate)` steps, sorted by `from`; the first step should start at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySchedule(pub Vec<(Duration, Bitrate)>);

impl CapacitySchedule {
    /// A constant capacity.
    pub fn constant(rate: Bitrate) -> Self {
        CapacitySchedule(vec![(Duration::ZERO, rate)])
    }

    /// Steps of `(seconds, kbit/s)`.
    pub fn steps_kbps(steps: &[(u64, u64)]) -> Self {
        CapacitySchedule(steps.iter().map(|(s, k)| (Duration::from_secs(*s), Bitrate::kbps(*k))).collect())
    }

    /// The capacity at offset `t`.
    pub fn at(&self, t: Duration) -> Bitrate {
        self.0.iter().take_while(|(from, _)| *from <= t).last().map_or(Bitrate::ZERO, |s| s.1)
    }
}

/// The bottleneck's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Service rate of the queue over time.
    pub capacity: CapacitySchedule,
    /// Propagation delay after the queue (one way).
    pub one_way_delay: Duration,
    /// Drop-tail limit, as queuing delay at the current capacity (RFC 8867 uses 300 ms).
    pub queue_limit: Duration,
    /// Random loss before the queue (0..=1).
    pub loss: f64,
    /// Delay of the feedback path (uncongested).
    pub feedback_delay: Duration,
}

/// A packet on the simulated wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimPacket {
    /// Index of the sending flow in [`super::Scenario::flows`].
    pub flow: usize,
    /// Per-flow sequence number (the transport-wide sequence number, unwrapped).
    pub seq: u64,
    /// Bytes on the wire.
    pub size: usize,
    /// When the sender put it on the link.
    pub sent_at: Instant,
    /// True for media, false for probe padding.
    pub media: bool,
}

/// A packet that made it through, with its queuing delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The packet as sent.
    pub packet: SimPacket,
    /// When it reached the receiver (after the queue, serialization and propagation).
    pub arrival: Instant,
    /// Time it waited in the queue behind other packets, excluding its own serialization.
    pub queuing: Duration,
}

#[derive(Debug)]
pub(crate) struct Link {
    cfg: LinkConfig,
    start: Instant,
    rng: Rng,
    queue: VecDeque<(SimPacket, Instant)>,
    queued_bytes: usize,
    serving: Option<(SimPacket, Instant, Instant)>, // packet, enqueued, done
    propagating: VecDeque<Delivery>,
    pub drops: u64,
}

impl Link {
    pub fn new(cfg: LinkConfig, start: Instant, seed: u64) -> Self {
        Link {
            cfg,
            start,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            queued_bytes: 0,
            serving: None,
            propagating: VecDeque::new(),
            drops: 0,
        }
    }

    pub fn capacity(&self, now: Instant) -> Bitrate {
        self.cfg.capacity.at(now.saturating_duration_since(self.start))
    }

    pub fn feedback_delay(&self) -> Duration {
        self.cfg.feedback_delay
    }

    /// Current queuing delay a new packet would see.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        let in_service = self.serving.map_or(Duration::ZERO, |(_, _, done)| done.saturating_duration_since(now));
        in_service + self.capacity(now).time_for(self.queued_bytes).unwrap_or(Duration::MAX)
    }

    /// Offer a packet. Returns false if it was dropped.
    pub fn send(&mut self, p: SimPacket, now: Instant) -> bool {
        if self.rng.chance(self.cfg.loss) || self.queue_delay(now) > self.cfg.queue_limit {
            self.drops += 1;
            return false;
        }
        self.queue.push_back((p, now));
        self.queued_bytes += p.size;
        self.start_service(now);
        true
    }

    fn start_service(&mut self, now: Instant) {
        if self.serving.is_some() {
            return;
        }
        let Some((p, enq)) = self.queue.pop_front() else {
            return;
        };
        self.queued_bytes -= p.size;
        let tx = self.capacity(now).time_for(p.size).unwrap_or(Duration::from_secs(3600));
        self.serving = Some((p, enq, now + tx));
    }

    /// The next time something happens inside the link.
    pub fn next_event(&self) -> Option<Instant> {
        let done = self.serving.map(|s| s.2);
        let arrive = self.propagating.front().map(|d| d.arrival);
        [done, arrive].into_iter().flatten().min()
    }

    /// Advance to `now`; returns packets that reached the receiver by then, in order.
    pub fn advance(&mut self, now: Instant) -> Vec<Delivery> {
        while let Some((p, enq, done)) = self.serving {
            if done > now {
                break;
            }
            self.serving = None;
            let tx = self.capacity(enq.max(done)).time_for(p.size).unwrap_or_default();
            let queuing = done.saturating_duration_since(enq).saturating_sub(tx);
            self.propagating.push_back(Delivery { packet: p, arrival: done + self.cfg.one_way_delay, queuing });
            self.start_service(done);
        }
        let mut out = Vec::new();
        while self.propagating.front().is_some_and(|d| d.arrival <= now) {
            out.extend(self.propagating.pop_front());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kbps: u64) -> LinkConfig {
        LinkConfig {
            capacity: CapacitySchedule::constant(Bitrate::kbps(kbps)),
            one_way_delay: Duration::from_millis(50),
            queue_limit: Duration::from_millis(300),
            loss: 0.0,
            feedback_delay: Duration::from_millis(50),
        }
    }

    fn pkt(seq: u64, at: Instant) -> SimPacket {
        SimPacket { flow: 0, seq, size: 1250, sent_at: at, media: true }
    }

    #[test]
    fn schedule_lookup() {
        let s = CapacitySchedule::steps_kbps(&[(0, 1000), (40, 2500), (60, 600)]);
        let cases = [(0, 1000), (39, 1000), (40, 2500), (59, 2500), (60, 600), (1000, 600)];
        for (t, want) in cases {
            assert_eq!(s.at(Duration::from_secs(t)), Bitrate::kbps(want), "t={t}");
        }
    }

    #[test]
    fn serialization_queueing_and_propagation() {
        let t0 = Instant::now();
        let mut l = Link::new(cfg(1000), t0, 1); // 1250 bytes = 10 ms
        assert!(l.send(pkt(0, t0), t0));
        assert!(l.send(pkt(1, t0), t0));
        let got = l.advance(t0 + Duration::from_millis(100));
        let arrivals: Vec<_> = got.iter().map(|d| (d.arrival - t0, d.queuing)).collect();
        assert_eq!(
            arrivals,
            vec![(Duration::from_millis(60), Duration::ZERO), (Duration::from_millis(70), Duration::from_millis(10))]
        );
        assert_eq!(l.next_event(), None);
    }

    #[test]
    fn drop_tail_at_queue_limit() {
        let t0 = Instant::now();
        let mut l = Link::new(cfg(1000), t0, 1);
        // One in service plus 300 ms (30 packets of 10 ms) waiting.
        let accepted = (0..50).filter(|i| l.send(pkt(*i, t0), t0)).count();
        assert_eq!(accepted, 31);
        assert_eq!(l.drops, 19);
    }
}
