//! Per-subscriber downstream impairment, applied inside the harness to every datagram the
//! subscriber's socket receives, before the peer connection sees it:
//! - random loss (seeded), applied to SRTP/SRTCP only so ICE and DTLS setup stay quick;
//! - a bottleneck of `rate` bits/s with a FIFO queue of at most [`QUEUE_LIMIT`] (tail drop);
//! - a constant one-way delay.

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The longest a datagram may wait in the bottleneck queue before it is dropped.
pub const QUEUE_LIMIT: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, Default)]
pub struct LinkConfig {
    pub loss: f64,
    pub rate_bps: Option<u64>,
    pub delay: Duration,
}

impl LinkConfig {
    pub fn is_active(&self) -> bool {
        self.loss > 0.0 || self.rate_bps.is_some() || !self.delay.is_zero()
    }
}

pub enum Admit {
    /// Hand it to the peer connection now.
    Now,
    /// Held until the given time.
    Queued(Instant),
    DroppedLoss,
    DroppedQueue,
}

pub struct Link {
    config: LinkConfig,
    rng: SmallRng,
    next_free: Option<Instant>,
    queue: VecDeque<(Instant, SocketAddr, BytesMut)>,
}

/// RTP and RTCP start with version 2 (first byte 128..=191, RFC 7983).
fn is_rtp_or_rtcp(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (128..=191).contains(b))
}

impl Link {
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self { config, rng: SmallRng::seed_from_u64(seed), next_free: None, queue: VecDeque::new() }
    }

    pub fn admit(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Admit {
        if self.config.loss > 0.0 && is_rtp_or_rtcp(datagram) && self.rng.random::<f64>() < self.config.loss {
            return Admit::DroppedLoss;
        }
        let mut at = now;
        if let Some(rate) = self.config.rate_bps {
            let start = self.next_free.filter(|t| *t > now).unwrap_or(now);
            if start - now > QUEUE_LIMIT {
                return Admit::DroppedQueue;
            }
            // Bits on the wire: payload plus IP/UDP headers.
            let bits = (datagram.len() as u64 + 28) * 8;
            let done = start + Duration::from_nanos(bits * 1_000_000_000 / rate);
            self.next_free = Some(done);
            at = done;
        }
        at += self.config.delay;
        if at <= now && self.queue.is_empty() {
            return Admit::Now;
        }
        self.queue.push_back((at, from, BytesMut::from(datagram)));
        Admit::Queued(self.queue.front().map_or(at, |f| f.0))
    }

    /// The next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(SocketAddr, BytesMut)> {
        if self.queue.front().is_some_and(|f| f.0 <= now) {
            self.queue.pop_front().map(|(_, from, data)| (from, data))
        } else {
            None
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|f| f.0)
    }

    /// How long an unrepaired gap is waited for before the subscriber asks for a keyframe.
    pub fn repair_window(&self) -> Duration {
        Duration::from_millis(300) + self.config.delay * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn loss_is_roughly_the_configured_rate_and_spares_dtls() {
        let mut link = Link::new(LinkConfig { loss: 0.1, ..Default::default() }, 7);
        let now = Instant::now();
        let rtp = [0x80u8; 100];
        let dropped = (0..10_000).filter(|_| matches!(link.admit(&rtp, addr(), now), Admit::DroppedLoss)).count();
        assert!((800..1200).contains(&dropped), "{dropped}");
        let dtls = [22u8; 100];
        assert!((0..1000).all(|_| matches!(link.admit(&dtls, addr(), now), Admit::Now)));
    }

    #[test]
    fn bottleneck_queues_then_drops() {
        let mut link = Link::new(LinkConfig { rate_bps: Some(800_000), ..Default::default() }, 1);
        let now = Instant::now();
        let packet = [0x80u8; 972]; // 1000 bytes on the wire = 10 ms at 800 kbit/s
        let mut queued = 0;
        let mut dropped = 0;
        for _ in 0..40 {
            match link.admit(&packet, addr(), now) {
                Admit::Queued(_) => queued += 1,
                Admit::DroppedQueue => dropped += 1,
                _ => {}
            }
        }
        assert!((24..=27).contains(&queued), "{queued}");
        assert_eq!(queued + dropped, 40);
        assert!(link.pop_due(now).is_none());
        assert!(link.pop_due(now + Duration::from_millis(10)).is_some());
    }

    #[test]
    fn delay_holds_packets() {
        let mut link = Link::new(LinkConfig { delay: Duration::from_millis(40), ..Default::default() }, 1);
        let now = Instant::now();
        assert!(matches!(link.admit(&[0x80; 10], addr(), now), Admit::Queued(_)));
        assert!(link.pop_due(now + Duration::from_millis(39)).is_none());
        assert!(link.pop_due(now + Duration::from_millis(40)).is_some());
    }
}
