//! Decides when to probe and at what rate.
//!
//! * **Initial**: at start, two clusters at 3× and 6× the start rate, so a call does not spend
//!   its first seconds ramping up from a guess.
//! * **Further**: while a probe gets through nearly in full (≥ [`FURTHER_THRESHOLD`] of its
//!   target), probe again at twice the result: exponential search up to the wanted rate.
//! * **Requested**: the application asks before an up-switch ("can I have 2.5 Mbit/s?"). It may
//!   ask on every feedback report; a request is granted only when no probe is awaiting its result
//!   and none was sent, nor the estimate cut, within [`REQUEST_QUIET`]. Otherwise a path that
//!   cannot carry the higher layer would be probed back into congestion several times a second.
//! * **Periodic**: the application wants more than the estimate, nothing has been congested for
//!   [`ProbeConfig::periodic_interval`], and no probe ran for as long: probe at
//!   [`PERIODIC_SCALE`] × estimate. This is what finds a capacity *increase* in seconds; AIMD alone
//!   needs tens of seconds near its last congestion point.
//!
//! No probe is started while the delay signal says overuse or loss is capping the estimate: a
//! burst into a full queue measures nothing and makes the congestion worse.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{ProbeCluster, ProbeReason};
use crate::Bitrate;

/// Initial probe rates, as multiples of the start bitrate.
pub(crate) const INITIAL_SCALES: [f64; 2] = [3.0, 6.0];
/// A probe result at least this share of its target triggers a further probe.
pub(crate) const FURTHER_THRESHOLD: f64 = 0.7;
/// A further probe goes to this multiple of the last result.
pub(crate) const FURTHER_SCALE: f64 = 2.0;
/// Periodic probes go to this multiple of the estimate (then further probing takes over).
pub(crate) const PERIODIC_SCALE: f64 = 1.5;
/// Give up waiting for a result after this long.
pub(crate) const WAIT_FOR_RESULT: Duration = Duration::from_secs(1);
/// Probing to less than this multiple of the estimate is not worth a burst.
pub(crate) const MIN_PROBE_GAIN: f64 = 1.1;
/// A requested probe needs this long without a probe or a decrease before it.
pub(crate) const REQUEST_QUIET: Duration = Duration::from_secs(1);
/// How often the periodic condition is re-checked while it could become true.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Probing knobs (part of [`crate::BweConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Probe at start, at 3× and 6× the start bitrate (`INITIAL_SCALES`).
    pub initial: bool,
    /// Probe for headroom when the application wants more than the estimate; `None` disables.
    pub periodic_interval: Option<Duration>,
    /// Length of one burst.
    pub duration: Duration,
    /// Packets per burst at least.
    pub min_packets: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            initial: true,
            periodic_interval: Some(Duration::from_millis(1500)),
            duration: Duration::from_millis(30),
            min_packets: 5,
        }
    }
}

/// What the controller needs to know about the estimator at each decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeContext {
    pub estimate: Bitrate,
    /// What the application would like to send, if it said.
    pub desired: Option<Bitrate>,
    /// Hard ceiling of any probe.
    pub max: Bitrate,
    /// Overuse right now, or a loss cap in force.
    pub congested: bool,
    pub last_decrease: Option<Instant>,
}

impl ProbeContext {
    fn ceiling(&self) -> Bitrate {
        self.desired.map_or(self.max, |d| d.min(self.max))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Nothing sent yet.
    Init,
    /// A cluster is out; a result above `further_above` leads to another one.
    Waiting {
        further_above: Option<Bitrate>,
        until: Instant,
    },
    Idle,
}

#[derive(Debug)]
pub(crate) struct ProbeController {
    config: ProbeConfig,
    state: State,
    queue: VecDeque<(ProbeCluster, ProbeReason)>,
    next_id: u32,
    last_probe: Option<Instant>,
    next_check: Option<Instant>,
    created: Instant,
}

impl ProbeController {
    pub fn new(config: ProbeConfig, now: Instant) -> Self {
        ProbeController {
            config,
            state: State::Init,
            queue: VecDeque::new(),
            next_id: 1,
            last_probe: None,
            next_check: None,
            created: now,
        }
    }

    /// Queue a cluster at `target` (capped to the context's ceiling) if it is worth it.
    fn enqueue(&mut self, target: Bitrate, reason: ProbeReason, ctx: &ProbeContext, now: Instant) -> bool {
        let target = target.min(ctx.max);
        if target.as_f64() < ctx.estimate.as_f64() * MIN_PROBE_GAIN {
            return false;
        }
        let cluster = ProbeCluster::new(self.next_id, target, self.config.duration, self.config.min_packets);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.queue.push_back((cluster, reason));
        self.last_probe = Some(now);
        let further_above = match reason {
            ProbeReason::Requested => None,
            _ => Some(target * FURTHER_THRESHOLD),
        };
        self.state = State::Waiting { further_above, until: now + WAIT_FOR_RESULT };
        true
    }

    /// The application asks for a probe to `target`. Refused (false) while congested, while a
    /// probe awaits its result, and within [`REQUEST_QUIET`] of the last probe or decrease.
    pub fn request(&mut self, target: Bitrate, ctx: &ProbeContext, now: Instant) -> bool {
        let waiting = matches!(self.state, State::Waiting { .. }) || !self.queue.is_empty();
        let recent = [self.last_probe, ctx.last_decrease]
            .into_iter()
            .flatten()
            .any(|t| now.saturating_duration_since(t) < REQUEST_QUIET);
        !ctx.congested && !waiting && !recent && self.enqueue(target, ProbeReason::Requested, ctx, now)
    }

    /// A probe measured `result`; `saturated` if the burst filled the bottleneck (then the
    /// capacity is found and probing further would only build a queue).
    pub fn on_result(&mut self, result: Bitrate, saturated: bool, ctx: &ProbeContext, now: Instant) {
        if let State::Waiting { further_above: Some(above), .. } = self.state
            && !saturated
            && result >= above
            && self.queue.is_empty()
            && !ctx.congested
        {
            let target = (result * FURTHER_SCALE).min(ctx.ceiling());
            if self.enqueue(target, ProbeReason::Further, ctx, now) {
                return;
            }
        }
        if self.queue.is_empty() {
            self.state = State::Idle;
            // Re-evaluate periodic probing at the next timeout.
            self.next_check = Some(now);
        }
    }

    /// Time-driven decisions.
    pub fn handle_timeout(&mut self, ctx: &ProbeContext, now: Instant) {
        self.next_check = None;
        match self.state {
            State::Init => {
                self.state = State::Idle;
                if self.config.initial {
                    for scale in INITIAL_SCALES {
                        let target = (ctx.estimate * scale).min(ctx.ceiling());
                        self.enqueue(target, ProbeReason::Initial, ctx, now);
                    }
                }
            }
            State::Waiting { until, .. } if now >= until => self.state = State::Idle,
            State::Waiting { .. } | State::Idle => {}
        }
        if let State::Waiting { until, .. } = self.state {
            self.next_check = Some(until);
            return;
        }
        let Some(interval) = self.config.periodic_interval else {
            return;
        };
        let Some(desired) = ctx.desired else { return };
        if desired.as_f64() < ctx.estimate.as_f64() * MIN_PROBE_GAIN {
            return;
        }
        let quiet_since = [self.last_probe, ctx.last_decrease].into_iter().flatten().max();
        let due = quiet_since.is_none_or(|t| now.saturating_duration_since(t) >= interval);
        if due && !ctx.congested {
            let target = (ctx.estimate * PERIODIC_SCALE).min(ctx.ceiling());
            if self.enqueue(target, ProbeReason::Periodic, ctx, now) {
                return;
            }
        }
        self.next_check = Some(match quiet_since {
            Some(t) if !due => t + interval,
            _ => now + CHECK_INTERVAL,
        });
    }

    /// The next cluster to send.
    pub fn poll(&mut self) -> Option<(ProbeCluster, ProbeReason)> {
        self.queue.pop_front()
    }

    /// When [`Self::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Init => Some(self.created),
            _ => self.next_check,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(estimate_kbps: u64, desired_kbps: Option<u64>) -> ProbeContext {
        ProbeContext {
            estimate: Bitrate::kbps(estimate_kbps),
            desired: desired_kbps.map(Bitrate::kbps),
            max: Bitrate::mbps(10),
            congested: false,
            last_decrease: None,
        }
    }

    fn targets(c: &mut ProbeController) -> Vec<(u64, ProbeReason)> {
        std::iter::from_fn(|| c.poll()).map(|(p, r)| (p.target.as_u64() / 1000, r)).collect()
    }

    #[test]
    fn initial_then_further_then_idle() {
        let t0 = Instant::now();
        let mut c = ProbeController::new(ProbeConfig::default(), t0);
        assert_eq!(c.poll_timeout(), Some(t0));
        c.handle_timeout(&ctx(300, None), t0);
        assert_eq!(targets(&mut c), vec![(900, ProbeReason::Initial), (1800, ProbeReason::Initial)]);
        // 1.8 Mbit/s got through: probe 3.6.
        c.on_result(Bitrate::kbps(1800), false, &ctx(1800, None), t0 + Duration::from_millis(200));
        assert_eq!(targets(&mut c), vec![(3600, ProbeReason::Further)]);
        // A saturated result ends the search even when it is close to the target.
        let mut d = ProbeController::new(ProbeConfig::default(), t0);
        d.handle_timeout(&ctx(300, None), t0);
        let _ = targets(&mut d);
        d.on_result(Bitrate::kbps(1700), true, &ctx(1700, None), t0 + Duration::from_millis(200));
        assert!(targets(&mut d).is_empty());
        // Only 2 of 3.6 got through: stop.
        c.on_result(Bitrate::kbps(2000), false, &ctx(2000, None), t0 + Duration::from_millis(400));
        assert!(targets(&mut c).is_empty());
        assert_eq!(c.state, State::Idle);
    }

    #[test]
    fn initial_capped_by_desired_and_skipped_when_pointless() {
        let t0 = Instant::now();
        let mut c = ProbeController::new(ProbeConfig::default(), t0);
        c.handle_timeout(&ctx(300, Some(1000)), t0);
        assert_eq!(targets(&mut c), vec![(900, ProbeReason::Initial), (1000, ProbeReason::Initial)]);
        let mut c = ProbeController::new(ProbeConfig::default(), t0);
        c.handle_timeout(&ctx(300, Some(310)), t0);
        assert!(targets(&mut c).is_empty());
    }

    #[test]
    fn periodic_table() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (desired kbps, congested, last decrease ago, expect a probe at 3 s)
        type Case = (Option<u64>, bool, Option<u64>, Option<u64>);
        let cases: &[Case] = &[
            (Some(5000), false, None, Some(1500)),
            (Some(1200), false, None, Some(1200)),
            (Some(1050), false, None, None),    // not worth it
            (None, false, None, None),          // nobody wants more
            (Some(5000), true, None, None),     // congested
            (Some(5000), false, Some(1), None), // decreased 1 s ago
        ];
        for (desired, congested, decrease_ago, want) in cases {
            let cfg = ProbeConfig { initial: false, ..ProbeConfig::default() };
            let mut c = ProbeController::new(cfg, t0);
            c.handle_timeout(&ctx(1000, None), t0); // leaves Init
            let mut x = ctx(1000, *desired);
            x.congested = *congested;
            x.last_decrease = decrease_ago.map(|a| t0 + s(3) - s(a));
            c.last_probe = Some(t0);
            c.handle_timeout(&x, t0 + s(3));
            let got = targets(&mut c).first().map(|(t, _)| *t);
            assert_eq!(got, *want, "desired {desired:?} congested {congested} decrease {decrease_ago:?}");
        }
    }

    #[test]
    fn request_refused_when_congested() {
        let t0 = Instant::now();
        let mut c = ProbeController::new(ProbeConfig::default(), t0);
        let mut x = ctx(1000, None);
        x.congested = true;
        assert!(!c.request(Bitrate::mbps(2), &x, t0));
        x.congested = false;
        assert!(c.request(Bitrate::mbps(2), &x, t0));
        assert_eq!(targets(&mut c), vec![(2000, ProbeReason::Requested)]);
        // A requested probe is not followed up.
        c.on_result(Bitrate::mbps(2), false, &ctx(2000, None), t0);
        assert!(targets(&mut c).is_empty());
    }

    #[test]
    fn requests_wait_for_the_result_and_a_quiet_second() {
        let t0 = Instant::now();
        let config = ProbeConfig { initial: false, periodic_interval: None, ..ProbeConfig::default() };
        let mut c = ProbeController::new(config, t0);
        let x = ctx(1000, None);
        assert!(c.request(Bitrate::mbps(2), &x, t0));
        let ms = |n| t0 + Duration::from_millis(n);
        // Refused while the first is queued or awaiting its result, and for a second after it.
        assert!(!c.request(Bitrate::mbps(2), &x, ms(50)));
        targets(&mut c);
        c.on_result(Bitrate::kbps(900), false, &x, ms(200));
        assert!(!c.request(Bitrate::mbps(2), &x, ms(500)));
        assert!(c.request(Bitrate::mbps(2), &x, ms(1000)));
        targets(&mut c);
        c.on_result(Bitrate::kbps(900), false, &x, ms(1100));
        // A recent decrease holds requests back as well.
        let mut cut = ctx(1000, None);
        cut.last_decrease = Some(ms(2500));
        assert!(!c.request(Bitrate::mbps(2), &cut, ms(3000)));
        assert!(c.request(Bitrate::mbps(2), &cut, ms(3500)));
    }
}
