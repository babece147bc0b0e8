//! One simulated media flow: a paced sender driven by a [`SendSideBwe`], and the receiver that
//! records arrivals and returns transport-wide feedback.

use std::time::{Duration, Instant};

use super::link::SimPacket;
use crate::{Bitrate, BweConfig, ProbeCluster, SendSideBwe, SentPacket, TransportFeedback};

/// A flow's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    /// When the flow starts sending (offset from the simulation start).
    pub start: Duration,
    /// When it stops, if before the end.
    pub stop: Option<Duration>,
    /// The most the media source can produce; also told to the estimator as the desired rate.
    pub max_rate: Bitrate,
    /// Packet size on the wire.
    pub packet_size: usize,
    /// How often the receiver sends feedback.
    pub feedback_interval: Duration,
    /// The estimator's configuration.
    pub bwe: BweConfig,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            start: Duration::ZERO,
            stop: None,
            max_rate: Bitrate::mbps(3),
            packet_size: 1200,
            feedback_interval: Duration::from_millis(50),
            bwe: BweConfig::default(),
        }
    }
}

#[derive(Debug)]
struct ActiveProbe {
    cluster: ProbeCluster,
    bytes: usize,
    packets: usize,
}

/// Sends media at `min(estimate, max_rate)`, evenly paced, and probe clusters at their target
/// rate (media when the media budget allows, padding otherwise).
#[derive(Debug)]
pub(crate) struct SimSender {
    pub cfg: FlowConfig,
    pub bwe: SendSideBwe,
    index: usize,
    seq: u64,
    next_send: Instant,
    probe: Option<ActiveProbe>,
    /// Media bytes the encoder has ready (accrues at the media rate, capped).
    media_credit: f64,
    last_credit: Instant,
}

impl SimSender {
    pub fn new(index: usize, cfg: FlowConfig, now: Instant) -> Self {
        let mut bwe = SendSideBwe::new(cfg.bwe, now);
        bwe.set_desired_bitrate(Some(cfg.max_rate), now);
        SimSender { index, bwe, seq: 0, next_send: now, probe: None, media_credit: 0.0, last_credit: now, cfg }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn media_rate(&self) -> Bitrate {
        self.bwe.estimate().min(self.cfg.max_rate)
    }

    pub fn next_send(&self) -> Instant {
        self.next_send
    }

    /// Produce the packet due at `now` (call when `now >= next_send`).
    pub fn send(&mut self, now: Instant) -> SimPacket {
        if self.probe.is_none() {
            self.probe = self.bwe.poll_probe(now).map(|cluster| ActiveProbe { cluster, bytes: 0, packets: 0 });
        }
        let size = self.cfg.packet_size;
        let media_rate = self.media_rate();
        let elapsed = now.saturating_duration_since(self.last_credit);
        self.last_credit = now;
        let cap = 2.0 * size as f64;
        self.media_credit = (self.media_credit + media_rate.bytes_in(elapsed)).min(cap);

        let (rate, cluster_id, media) = match self.probe.as_mut() {
            Some(p) => {
                p.bytes += size;
                p.packets += 1;
                let media = self.media_credit >= size as f64;
                (p.cluster.target.max(media_rate), Some(p.cluster.id), media)
            }
            None => (media_rate, None, true),
        };
        if media {
            self.media_credit = (self.media_credit - size as f64).max(0.0);
        }
        if self.probe.as_ref().is_some_and(|p| p.bytes >= p.cluster.min_bytes && p.packets >= p.cluster.min_packets) {
            self.probe = None;
        }
        let seq = self.seq;
        self.seq += 1;
        self.bwe.on_packet_sent(SentPacket { transport_seq: seq as u16, size, at: now, probe_cluster: cluster_id });
        self.next_send = now + rate.time_for(size).unwrap_or(Duration::from_millis(100));
        SimPacket { flow: self.index, seq, size, sent_at: now, media }
    }

    /// Re-pace after the estimate changed a lot (so a collapse takes effect before the next
    /// long gap ends, and a probe starts promptly).
    pub fn repace(&mut self, now: Instant) {
        let gap = self.media_rate().time_for(self.cfg.packet_size).unwrap_or(Duration::from_millis(100));
        if self.next_send > now + gap {
            self.next_send = now + gap;
        }
    }
}

/// Records arrivals and builds a report every `feedback_interval`.
#[derive(Debug)]
pub(crate) struct SimReceiver {
    interval: Duration,
    epoch: Instant,
    /// First sequence number not yet covered by a report.
    next_base: Option<u64>,
    /// Arrivals since the last report: (seq, arrival).
    pending: Vec<(u64, Instant)>,
    next_report: Instant,
}

impl SimReceiver {
    pub fn new(interval: Duration, epoch: Instant, start: Instant) -> Self {
        SimReceiver { interval, epoch, next_base: None, pending: Vec::new(), next_report: start + interval }
    }

    pub fn on_arrival(&mut self, seq: u64, at: Instant) {
        self.pending.push((seq, at));
    }

    pub fn next_report(&self) -> Instant {
        self.next_report
    }

    /// Build the report due at `now`, if any packet arrived since the last one.
    pub fn report(&mut self, now: Instant) -> Option<TransportFeedback> {
        self.next_report = now + self.interval;
        let highest = self.pending.iter().map(|p| p.0).max()?;
        let base = self.next_base.unwrap_or_else(|| self.pending.iter().map(|p| p.0).min().unwrap_or(highest));
        let mut arrivals = vec![None; (highest + 1 - base) as usize];
        for (seq, at) in self.pending.drain(..) {
            if seq >= base {
                arrivals[(seq - base) as usize] = Some(at.saturating_duration_since(self.epoch));
            }
        }
        self.next_base = Some(highest + 1);
        Some(TransportFeedback { base_seq: base as u16, arrivals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_reports_gaps_as_lost() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = SimReceiver::new(ms(50), t0, t0);
        assert_eq!(r.report(t0 + ms(50)), None);
        for (seq, at) in [(0u64, 10u64), (1, 20), (3, 30)] {
            r.on_arrival(seq, t0 + ms(at));
        }
        let fb = r.report(t0 + ms(100)).unwrap();
        assert_eq!(fb.base_seq, 0);
        assert_eq!(fb.arrivals, vec![Some(ms(10)), Some(ms(20)), None, Some(ms(30))]);
        r.on_arrival(5, t0 + ms(120));
        let fb = r.report(t0 + ms(150)).unwrap();
        assert_eq!((fb.base_seq, fb.arrivals.len()), (4, 2));
    }

    #[test]
    fn sender_paces_at_estimate() {
        let t0 = Instant::now();
        let mut cfg = FlowConfig::default();
        cfg.bwe.probe.initial = false;
        cfg.bwe.probe.periodic_interval = None;
        cfg.bwe.start_bitrate = Bitrate::kbps(960); // 1200 bytes every 10 ms
        let mut s = SimSender::new(0, cfg, t0);
        let p = s.send(t0);
        assert!(p.media);
        assert_eq!(s.next_send() - t0, Duration::from_millis(10));
    }
}
