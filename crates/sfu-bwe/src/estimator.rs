//! [`SendSideBwe`]: the combiner that owns every inner piece and the public driving surface.

use std::time::{Duration, Instant};

use crate::acked::AckedBitrate;
use crate::aimd::Aimd;
use crate::delay::{BandwidthUsage, DelaySignal};
use crate::feedback::{SentPacket, TransportFeedback};
use crate::history::SendHistory;
use crate::loss::LossBased;
use crate::probe::{ProbeCluster, ProbeContext, ProbeController, ProbeEstimator, ProbeOutcome};
use crate::{Bitrate, BweConfig, BweStats};

/// RTT assumed until feedback gives one.
const DEFAULT_RTT: Duration = Duration::from_millis(200);
/// Weight of a new RTT sample in the smoothed RTT (RFC 6298's 1/8).
const RTT_GAIN: f64 = 0.125;
/// Without any feedback for this long while sending, the path may be gone: cut the estimate.
pub(crate) const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(1);
/// Cut applied per [`FEEDBACK_TIMEOUT`] without feedback.
pub(crate) const FEEDBACK_TIMEOUT_FACTOR: f64 = 0.8;
/// A REMB not refreshed for this long no longer caps the estimate (clients send one per second).
pub(crate) const REMB_TIMEOUT: Duration = Duration::from_secs(5);
/// A congestion verdict (delay overuse, a loss fraction) is only as fresh as the feedback behind
/// it: once nothing has been sent or acknowledged for this long, whatever queue it saw has long
/// drained, so it is forgotten and probing may find out what the path carries now.
pub(crate) const VERDICT_MAX_AGE: Duration = Duration::from_secs(2);

/// Send-side bandwidth estimator for one transport (one subscriber).
///
/// Inputs: [`on_packet_sent`](Self::on_packet_sent), [`on_feedback`](Self::on_feedback),
/// [`on_remb`](Self::on_remb), [`on_rtt`](Self::on_rtt), [`set_desired_bitrate`](Self::set_desired_bitrate),
/// [`request_probe`](Self::request_probe), [`handle_timeout`](Self::handle_timeout).
/// Outputs: [`estimate`](Self::estimate), [`poll_probe`](Self::poll_probe),
/// [`poll_timeout`](Self::poll_timeout), [`stats`](Self::stats).
#[derive(Debug)]
pub struct SendSideBwe {
    config: BweConfig,
    history: SendHistory,
    delay: DelaySignal,
    aimd: Aimd,
    loss: LossBased,
    acked: AckedBitrate,
    probe_control: ProbeController,
    probe_estimator: ProbeEstimator,
    remb: Option<(Bitrate, Instant)>,
    external_rtt: bool,
    rtt: Option<Duration>,
    desired: Option<Bitrate>,
    estimate: Bitrate,
    last_feedback: Option<Instant>,
    last_sent: Option<Instant>,
    last_timeout_cut: Option<Instant>,
    stats: BweStats,
}

impl SendSideBwe {
    /// A new estimator starting at `config.start_bitrate`.
    pub fn new(config: BweConfig, now: Instant) -> Self {
        let aimd = Aimd::new(config.start_bitrate, config.min_bitrate, config.max_bitrate);
        let estimate = aimd.estimate();
        SendSideBwe {
            history: SendHistory::default(),
            delay: DelaySignal::default(),
            aimd,
            loss: LossBased::default(),
            acked: AckedBitrate::default(),
            probe_control: ProbeController::new(config.probe, now),
            probe_estimator: ProbeEstimator::default(),
            remb: None,
            external_rtt: false,
            rtt: None,
            desired: None,
            estimate,
            last_feedback: None,
            last_sent: None,
            last_timeout_cut: None,
            stats: BweStats::default(),
            config,
        }
    }

    /// The current estimate: what may be sent to this subscriber, padding and probes included.
    pub fn estimate(&self) -> Bitrate {
        self.estimate
    }

    /// Counters and internal state for metrics.
    pub fn stats(&self) -> BweStats {
        let (trend, threshold) = self.delay.trend_and_threshold();
        BweStats {
            estimate: self.estimate,
            delay_based: self.aimd.estimate(),
            loss_cap: self.loss.cap(),
            remb: self.remb.map(|r| r.0),
            acked: self.acked.rate(),
            usage: self.delay.usage(),
            rate_state: self.aimd.state(),
            loss_fraction: self.loss.fraction(),
            rtt: self.rtt,
            trend,
            threshold,
            ..self.stats
        }
    }

    /// Record a packet just put on the wire.
    pub fn on_packet_sent(&mut self, packet: SentPacket) {
        self.history.on_sent(&packet);
        if let Some(id) = packet.probe_cluster {
            self.probe_estimator.on_sent(id, packet.size, packet.at);
        }
        self.last_sent = Some(packet.at);
    }

    /// Process one transport-wide feedback report received at `now`.
    pub fn on_feedback(&mut self, feedback: &TransportFeedback, now: Instant) {
        let mut results = self.history.on_feedback(feedback);
        if results.is_empty() {
            return;
        }
        self.forget_stale_verdicts(now);
        self.stats.feedback_reports += 1;
        self.last_feedback = Some(now);
        self.last_timeout_cut = None;

        // Delay and delivery are judged in arrival order.
        results.sort_by_key(|r| (r.arrival.is_none(), r.arrival, r.seq));
        let (mut lost, mut received) = (0u32, 0u32);
        let mut newest_send: Option<Instant> = None;
        for r in &results {
            if let Some(id) = r.probe_cluster {
                self.probe_estimator.on_report(id, r.size, r.arrival);
            }
            let Some(arrival) = r.arrival else {
                lost += 1;
                continue;
            };
            received += 1;
            newest_send = newest_send.max(Some(r.sent_at));
            self.delay.add(r.sent_at, arrival);
            self.acked.add(arrival, r.size);
        }
        if let Some(sent) = newest_send {
            self.on_rtt_sample(now.saturating_duration_since(sent));
        }
        let rtt = self.rtt.unwrap_or(DEFAULT_RTT);
        self.aimd.set_rtt(rtt);

        let mut probed = false;
        while let Some(outcome) = self.probe_estimator.poll_outcome(now) {
            probed |= self.apply_probe_outcome(outcome, now);
        }
        if !probed {
            // A probe result stands for this round: its own burst would read as overuse.
            self.aimd.update(self.delay.usage(), self.acked.rate(), now);
        }
        self.loss.on_reports(lost, received, self.estimate, self.aimd.estimate(), rtt, now);
        self.recompute(now);
    }

    /// A REMB (receiver-estimated maximum bitrate) from the client: caps the estimate until
    /// replaced or 5 s (`REMB_TIMEOUT`) pass without a new one.
    pub fn on_remb(&mut self, bitrate: Bitrate, now: Instant) {
        self.remb = Some((bitrate, now));
        self.recompute(now);
    }

    /// An RTT measured elsewhere (RTCP RR/DLSR). Once given, it replaces the feedback-based one,
    /// which includes the receiver's feedback delay.
    pub fn on_rtt(&mut self, rtt: Duration, _now: Instant) {
        self.external_rtt = true;
        self.smooth_rtt(rtt);
    }

    /// What the application would like to send (sum of the layers it wants), or `None` when it
    /// does not say. While this exceeds the estimate, the estimator probes for headroom
    /// periodically ([`crate::ProbeConfig::periodic_interval`]).
    pub fn set_desired_bitrate(&mut self, desired: Option<Bitrate>, _now: Instant) {
        self.desired = desired;
    }

    /// Ask for a probe to `target` before an up-switch. Returns false when refused (congested
    /// right now, or `target` not meaningfully above the estimate). The cluster comes out of
    /// [`poll_probe`](Self::poll_probe); its result, if good, raises the estimate.
    pub fn request_probe(&mut self, target: Bitrate, now: Instant) -> bool {
        self.forget_stale_verdicts(now);
        let ctx = self.probe_context();
        self.probe_control.request(target, &ctx, now)
    }

    /// The next probe cluster to send, if any.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeCluster> {
        let (cluster, _reason) = self.probe_control.poll()?;
        self.probe_estimator.start(cluster, now);
        self.stats.probes_sent += 1;
        Some(cluster)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let feedback = match (self.last_sent, self.last_feedback) {
            (Some(s), Some(f)) if s > self.last_timeout_cut.unwrap_or(f) => {
                Some(self.last_timeout_cut.unwrap_or(f) + FEEDBACK_TIMEOUT)
            }
            _ => None,
        };
        [
            self.probe_control.poll_timeout(),
            self.probe_estimator.poll_timeout(),
            feedback,
            self.verdict_stale_at(),
            self.remb.map(|(_, at)| at + REMB_TIMEOUT),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Run time-driven work due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.remb.is_some_and(|(_, at)| now.saturating_duration_since(at) >= REMB_TIMEOUT) {
            self.remb = None;
        }
        // Feedback went silent while we kept sending: the path may be broken or badly congested.
        // Only what was sent since the last cut (or feedback) counts: having sent nothing at all
        // says nothing about the path.
        if let (Some(sent), Some(fb)) = (self.last_sent, self.last_feedback) {
            let since = self.last_timeout_cut.unwrap_or(fb);
            if sent > since && now.saturating_duration_since(since) >= FEEDBACK_TIMEOUT {
                let cut = self.aimd.estimate() * FEEDBACK_TIMEOUT_FACTOR;
                self.aimd.set_estimate(cut, now);
                self.last_timeout_cut = Some(now);
            }
        }
        self.forget_stale_verdicts(now);
        while let Some(outcome) = self.probe_estimator.poll_outcome(now) {
            self.apply_probe_outcome(outcome, now);
        }
        self.recompute(now);
        let ctx = self.probe_context();
        self.probe_control.handle_timeout(&ctx, now);
    }

    /// Returns true if the result raised the estimate.
    fn apply_probe_outcome(&mut self, outcome: ProbeOutcome, now: Instant) -> bool {
        let Some(rate) = outcome.result else {
            self.stats.probes_failed += 1;
            return false;
        };
        let raised = rate > self.aimd.estimate() && self.delay.usage() != BandwidthUsage::Overuse;
        if raised {
            self.stats.probes_succeeded += 1;
            self.aimd.set_estimate(rate, now);
            self.loss.lift_to(rate);
            self.recompute(now);
        }
        let ctx = self.probe_context();
        self.probe_control.on_result(rate, outcome.saturated, &ctx, now);
        raised
    }

    /// Whether the delay or loss signal holds a verdict that would keep probes back.
    fn holds_verdict(&self) -> bool {
        self.delay.usage() != BandwidthUsage::Normal || self.loss.fraction() > 0.0
    }

    /// When the verdicts held go stale: [`VERDICT_MAX_AGE`] after the last packet sent or
    /// acknowledged, whichever is later.
    fn verdict_stale_at(&self) -> Option<Instant> {
        let last_heard = self.last_feedback.max(self.last_sent)?;
        self.holds_verdict().then_some(last_heard + VERDICT_MAX_AGE)
    }

    /// Forgets the delay and loss verdicts once stale (nothing sent or acknowledged for
    /// [`VERDICT_MAX_AGE`]): a subscriber whose video was paused for congestion gets nothing
    /// more, hence no feedback, and its last verdict would otherwise refuse every probe for good.
    /// The delay signal starts afresh (its arrival groups would span the silence); a loss cap
    /// stays until a probe or low loss lifts it.
    fn forget_stale_verdicts(&mut self, now: Instant) {
        if self.verdict_stale_at().is_some_and(|at| now >= at) {
            self.delay = DelaySignal::default();
            self.loss.forget_fraction();
            self.stats.verdicts_expired += 1;
        }
    }

    fn probe_context(&self) -> ProbeContext {
        ProbeContext {
            estimate: self.estimate,
            desired: self.desired,
            max: self.config.max_bitrate,
            // A loss cap whose loss has stopped is recovering (8 %/s); a probe can lift it at
            // once. While loss goes on, a burst would only add to it.
            congested: self.delay.usage() == BandwidthUsage::Overuse
                || (self.loss.cap().is_some() && self.loss.fraction() >= crate::loss::LOW_LOSS),
            last_decrease: self.aimd.last_decrease(),
        }
    }

    fn recompute(&mut self, _now: Instant) {
        let mut e = self.aimd.estimate();
        if let Some(cap) = self.loss.cap() {
            e = e.min(cap);
        }
        if let Some((remb, _)) = self.remb {
            e = e.min(remb);
        }
        self.estimate = e.clamp(self.config.min_bitrate, self.config.max_bitrate);
    }

    fn on_rtt_sample(&mut self, sample: Duration) {
        if !self.external_rtt {
            self.smooth_rtt(sample);
        }
    }

    fn smooth_rtt(&mut self, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => sample,
            Some(r) => r.mul_f64(1.0 - RTT_GAIN) + sample.mul_f64(RTT_GAIN),
        });
    }
}
