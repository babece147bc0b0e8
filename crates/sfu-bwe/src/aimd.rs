//! AIMD rate control: turns the delay verdict into a delay-based estimate.
//!
//! * **Overuse** → decrease to `BETA × acknowledged bitrate` (what the bottleneck delivered while
//!   the queue was growing, so a little under capacity), then hold.
//! * **Underuse** → hold: a queue is draining; increasing now would refill it.
//! * **Normal** → increase. Far from the last congestion point the increase is multiplicative
//!   (8 %/s) to find capacity; near it (the acknowledged rate sits inside the band where earlier
//!   decreases happened) it is additive, about one packet per response time, to linger just under
//!   capacity instead of overshooting.
//!
//! Increases are capped at 1.5 × the acknowledged bitrate: an estimate far above what the sender
//! actually sends has not been tested and means nothing.

use std::time::{Duration, Instant};

use crate::Bitrate;
use crate::delay::BandwidthUsage;

/// Multiplicative decrease factor applied to the acknowledged bitrate on overuse.
pub(crate) const BETA: f64 = 0.85;
/// Multiplicative increase per second when far from the last congestion point.
pub(crate) const MULTIPLICATIVE_INCREASE_PER_SEC: f64 = 1.08;
/// An increase never takes the estimate above this multiple of the acknowledged bitrate...
pub(crate) const MAX_ACKED_RATIO: f64 = 1.5;
/// ...plus this, so very low rates can still grow.
pub(crate) const ACKED_CAP_HEADROOM: Bitrate = Bitrate::kbps(10);
/// Added to the RTT to form the response time of the additive increase (the time a decrease takes
/// to show up in the delay signal: RTT plus detection time).
pub(crate) const RESPONSE_TIME_EXTRA: Duration = Duration::from_millis(100);
/// Slowest additive increase, bit/s per second.
pub(crate) const MIN_ADDITIVE_INCREASE_BPS_PER_SEC: f64 = 4_000.0;
/// Smoothing of the congestion-point (link capacity) average.
const LINK_CAPACITY_ALPHA: f64 = 0.05;

/// AIMD state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateControlState {
    /// Waiting: after a decrease or while a queue drains.
    #[default]
    Hold,
    /// Growing the estimate.
    Increase,
    /// Overuse: the next update reduces the estimate.
    Decrease,
}

/// Running average of the acknowledged bitrate at decreases, with a normalized variance: where the
/// link's capacity was found last time.
#[derive(Debug, Default, Clone, Copy)]
struct LinkCapacity {
    /// kbit/s
    estimate: Option<f64>,
    /// Normalized variance (kbit/s).
    var: f64,
}

impl LinkCapacity {
    fn on_decrease(&mut self, acked: Bitrate) {
        let sample = acked.as_f64() / 1000.0;
        let est = match self.estimate {
            None => {
                self.var = 0.4;
                sample
            }
            Some(e) => (1.0 - LINK_CAPACITY_ALPHA) * e + LINK_CAPACITY_ALPHA * sample,
        };
        let norm = est.max(1.0);
        self.var = ((1.0 - LINK_CAPACITY_ALPHA) * self.var + LINK_CAPACITY_ALPHA * (est - sample).powi(2) / norm)
            .clamp(0.4, 2.5);
        self.estimate = Some(est);
    }

    fn deviation(&self, est: f64) -> f64 {
        (self.var * est).sqrt()
    }

    fn upper(&self) -> Option<Bitrate> {
        self.estimate.map(|e| Bitrate::from_f64((e + 3.0 * self.deviation(e)) * 1000.0))
    }

    fn lower(&self) -> Option<Bitrate> {
        self.estimate.map(|e| Bitrate::from_f64((e - 3.0 * self.deviation(e)) * 1000.0))
    }
}

#[derive(Debug)]
pub(crate) struct Aimd {
    estimate: Bitrate,
    min: Bitrate,
    max: Bitrate,
    state: RateControlState,
    link: LinkCapacity,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    rtt: Duration,
}

impl Aimd {
    pub fn new(start: Bitrate, min: Bitrate, max: Bitrate) -> Self {
        Aimd {
            estimate: start.clamp(min, max),
            min,
            max,
            state: RateControlState::Hold,
            link: LinkCapacity::default(),
            last_change: None,
            last_decrease: None,
            rtt: Duration::from_millis(200),
        }
    }

    pub fn estimate(&self) -> Bitrate {
        self.estimate
    }

    pub fn state(&self) -> RateControlState {
        self.state
    }

    pub fn last_decrease(&self) -> Option<Instant> {
        self.last_decrease
    }

    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Replace the estimate outright (a probe result, or an external cap taking over).
    pub fn set_estimate(&mut self, b: Bitrate, now: Instant) {
        self.estimate = b.clamp(self.min, self.max);
        self.last_change = Some(now);
    }

    /// Apply one delay verdict together with the current acknowledged bitrate.
    pub fn update(&mut self, usage: BandwidthUsage, acked: Option<Bitrate>, now: Instant) -> Bitrate {
        self.state = match (usage, self.state) {
            (BandwidthUsage::Overuse, _) => RateControlState::Decrease,
            (BandwidthUsage::Underuse, _) => RateControlState::Hold,
            (BandwidthUsage::Normal, RateControlState::Hold) => {
                self.last_change = Some(now);
                RateControlState::Increase
            }
            (BandwidthUsage::Normal, s) => s,
        };
        match self.state {
            RateControlState::Hold => {}
            RateControlState::Increase => self.increase(acked, now),
            RateControlState::Decrease => self.decrease(acked, now),
        }
        self.estimate
    }

    fn increase(&mut self, acked: Option<Bitrate>, now: Instant) {
        let dt = self.last_change.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_change = Some(now);
        if let (Some(a), Some(upper)) = (acked, self.link.upper())
            && a > upper
        {
            // Sending well above the old congestion point without trouble: capacity changed.
            self.link = LinkCapacity::default();
        }
        let limit = acked.map_or(Bitrate::MAX, |a| a * MAX_ACKED_RATIO + ACKED_CAP_HEADROOM);
        if self.estimate >= limit {
            return;
        }
        let grown = if self.link.estimate.is_some() {
            self.estimate.as_f64() + self.additive_rate() * dt.as_secs_f64()
        } else {
            let eta = MULTIPLICATIVE_INCREASE_PER_SEC.powf(dt.as_secs_f64().min(1.0));
            self.estimate.as_f64() * eta + 1000.0 * dt.as_secs_f64().min(1.0)
        };
        let next = Bitrate::from_f64(grown).min(limit).max(self.estimate);
        self.estimate = next.clamp(self.min, self.max);
    }

    /// Additive increase in bit/s per second: one average video packet per response time.
    fn additive_rate(&self) -> f64 {
        let bits_per_frame = self.estimate.as_f64() / 30.0;
        let packets_per_frame = (bits_per_frame / (1200.0 * 8.0)).ceil().max(1.0);
        let packet_bits = bits_per_frame / packets_per_frame;
        let response = (self.rtt + RESPONSE_TIME_EXTRA).as_secs_f64();
        (packet_bits / response).max(MIN_ADDITIVE_INCREASE_BPS_PER_SEC)
    }

    fn decrease(&mut self, acked: Option<Bitrate>, now: Instant) {
        let Some(acked) = acked else {
            self.state = RateControlState::Hold;
            return;
        };
        // One decrease per round trip, unless the link collapsed to under half the estimate.
        let guard = self.rtt.clamp(Duration::from_millis(10), Duration::from_millis(200));
        let recent = self.last_decrease.is_some_and(|t| now.saturating_duration_since(t) < guard);
        if recent && acked >= self.estimate * 0.5 {
            self.state = RateControlState::Hold;
            return;
        }
        let mut target = acked * BETA;
        if target > self.estimate
            && let Some(e) = self.link.estimate
        {
            target = Bitrate::from_f64(e * 1000.0 * BETA);
        }
        if target < self.estimate {
            self.estimate = target.clamp(self.min, self.max);
        }
        if self.link.lower().is_some_and(|l| acked < l) {
            self.link = LinkCapacity::default();
        }
        self.link.on_decrease(acked);
        self.last_decrease = Some(now);
        self.last_change = Some(now);
        self.state = RateControlState::Hold;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BandwidthUsage::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn decrease_to_beta_times_acked_then_hold() {
        let t0 = Instant::now();
        let mut a = Aimd::new(Bitrate::mbps(2), Bitrate::kbps(50), Bitrate::mbps(10));
        a.update(Normal, Some(Bitrate::mbps(2)), t0);
        let e = a.update(Overuse, Some(Bitrate::mbps(1)), t0 + ms(100));
        assert_eq!(e, Bitrate::kbps(850));
        assert_eq!(a.state(), RateControlState::Hold);
        // Repeated overuse within one RTT guard is ignored...
        assert_eq!(a.update(Overuse, Some(Bitrate::kbps(900)), t0 + ms(150)), Bitrate::kbps(850));
        // ...unless throughput collapsed.
        assert_eq!(a.update(Overuse, Some(Bitrate::kbps(400)), t0 + ms(160)), Bitrate::kbps(340));
    }

    #[test]
    fn increase_modes() {
        let t0 = Instant::now();
        // (near congestion point?, expected growth over 1 s from 1 Mbit/s, tolerance)
        let cases = [(false, 80_000.0 + 1000.0, 2_000.0), (true, 41_667.0, 2_000.0)];
        for (near, want, tol) in cases {
            let mut a = Aimd::new(Bitrate::mbps(1), Bitrate::kbps(50), Bitrate::mbps(10));
            a.set_rtt(ms(100));
            if near {
                a.link.on_decrease(Bitrate::mbps(1));
            }
            a.update(Normal, Some(Bitrate::mbps(1)), t0);
            for i in 1..=20 {
                a.update(Normal, Some(Bitrate::mbps(1)), t0 + ms(50 * i));
            }
            let grown = a.estimate().as_f64() - 1e6;
            // Multiplicative compounds per update: allow a little more.
            assert!((grown - want).abs() < tol + want * 0.01, "near {near}: grew {grown}");
        }
    }

    #[test]
    fn increase_capped_by_acked() {
        let t0 = Instant::now();
        let mut a = Aimd::new(Bitrate::mbps(1), Bitrate::kbps(50), Bitrate::mbps(10));
        a.update(Normal, Some(Bitrate::kbps(500)), t0);
        let e = a.update(Normal, Some(Bitrate::kbps(500)), t0 + Duration::from_secs(5));
        assert_eq!(e, Bitrate::mbps(1), "already above 1.5 x acked: no growth");
        let mut b = Aimd::new(Bitrate::kbps(700), Bitrate::kbps(50), Bitrate::mbps(10));
        for i in 0..10 {
            b.update(Normal, Some(Bitrate::kbps(500)), t0 + Duration::from_secs(i));
        }
        assert_eq!(b.estimate(), Bitrate::kbps(760));
    }

    #[test]
    fn underuse_holds() {
        let t0 = Instant::now();
        let mut a = Aimd::new(Bitrate::mbps(1), Bitrate::kbps(50), Bitrate::mbps(10));
        a.update(Normal, Some(Bitrate::mbps(1)), t0);
        a.update(Underuse, Some(Bitrate::mbps(1)), t0 + ms(500));
        assert_eq!(a.state(), RateControlState::Hold);
        assert_eq!(a.update(Underuse, Some(Bitrate::mbps(1)), t0 + ms(1500)), a.estimate());
    }
}
