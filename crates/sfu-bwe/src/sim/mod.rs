//! A seeded, virtual-time network simulator for bandwidth-estimation tests.
//!
//! Flows ([`FlowConfig`]) each run a [`crate::SendSideBwe`]-driven sender and a feedback-sending
//! receiver; all share one bottleneck ([`LinkConfig`]: piecewise-constant capacity, drop-tail
//! queue, propagation delay, random loss, delayed feedback path). [`run`] steps a discrete-event
//! loop from one event to the next — no sleeping, no clock — so a 100 s scenario takes
//! milliseconds and gives the same result for the same seed every time.

mod flow;
mod link;
mod report;
mod rng;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use flow::FlowConfig;
pub use link::{CapacitySchedule, Delivery, LinkConfig, SimPacket};
pub use report::{FlowSample, Report, Sample, jain_index};
pub use rng::Rng;

use flow::{SimReceiver, SimSender};
use link::Link;

/// A complete scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Label carried into the [`Report`].
    pub name: String,
    /// Seed of the link's random loss; the same seed gives the same run.
    pub seed: u64,
    /// Virtual time simulated.
    pub duration: Duration,
    /// The shared bottleneck.
    pub link: LinkConfig,
    /// The flows sharing it; index `i` is column `f{i}` of the report.
    pub flows: Vec<FlowConfig>,
    /// Resolution of the recorded time series.
    pub sample_interval: Duration,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bin {
    sent: usize,
    sent_media: usize,
    delivered_media: usize,
    delivered: usize,
}

struct Flow {
    sender: SimSender,
    receiver: SimReceiver,
    start: Instant,
    stop: Instant,
    bin: Bin,
}

impl Flow {
    fn active(&self, now: Instant) -> bool {
        now >= self.start && now < self.stop
    }
}

/// Run `scenario`. `epoch` is only the origin of virtual time; nothing reads the clock.
pub fn run(scenario: &Scenario, epoch: Instant) -> Report {
    let end = epoch + scenario.duration;
    let mut link = Link::new(scenario.link.clone(), epoch, scenario.seed);
    let mut flows: Vec<Flow> = scenario
        .flows
        .iter()
        .enumerate()
        .map(|(i, cfg)| {
            let start = epoch + cfg.start;
            Flow {
                sender: SimSender::new(i, cfg.clone(), start),
                receiver: SimReceiver::new(cfg.feedback_interval, epoch, start),
                start,
                stop: cfg.stop.map_or(end, |s| epoch + s),
                bin: Bin::default(),
            }
        })
        .collect();
    let mut feedback: VecDeque<(Instant, usize, crate::TransportFeedback)> = VecDeque::new();
    let mut report = Report::new(scenario, flows.len());
    let mut next_sample = epoch + scenario.sample_interval;
    let mut queuing_in_bin: (Duration, u32) = (Duration::ZERO, 0);
    let mut now = epoch;

    while now < end {
        // 1. The link: deliveries reach receivers.
        for d in link.advance(now) {
            let f = &mut flows[d.packet.flow];
            f.receiver.on_arrival(d.packet.seq, d.arrival);
            f.bin.delivered += d.packet.size;
            if d.packet.media {
                f.bin.delivered_media += d.packet.size;
            }
            queuing_in_bin.0 += d.queuing;
            queuing_in_bin.1 += 1;
            report.add_queuing(d.queuing);
        }
        // 2. Feedback reaching senders.
        while feedback.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, i, fb) = feedback.pop_front().expect("checked");
            let s = &mut flows[i].sender;
            s.bwe.on_feedback(&fb, now);
            s.repace(now);
        }
        for f in flows.iter_mut().filter(|f| now >= f.start) {
            // 3. Estimator timers.
            if f.sender.bwe.poll_timeout().is_some_and(|t| t <= now) {
                f.sender.bwe.handle_timeout(now);
                f.sender.repace(now);
            }
            // 4. Sending.
            if f.active(now) && f.sender.next_send() <= now {
                let p = f.sender.send(now);
                f.bin.sent += p.size;
                if p.media {
                    f.bin.sent_media += p.size;
                }
                link.send(p, now);
            }
            // 5. Receiver reports.
            if f.receiver.next_report() <= now
                && let Some(fb) = f.receiver.report(now)
            {
                feedback.push_back((now + link.feedback_delay(), f.sender_index(), fb));
            }
        }
        // 6. Sampling.
        if now >= next_sample {
            let secs = scenario.sample_interval.as_secs_f64();
            let samples = flows
                .iter_mut()
                .map(|f| {
                    let b = std::mem::take(&mut f.bin);
                    FlowSample {
                        active: f.active(now),
                        send_bps: b.sent as f64 * 8.0 / secs,
                        media_send_bps: b.sent_media as f64 * 8.0 / secs,
                        recv_media_bps: b.delivered_media as f64 * 8.0 / secs,
                        recv_bps: b.delivered as f64 * 8.0 / secs,
                        estimate_bps: if now >= f.start { f.sender.bwe.estimate().as_f64() } else { 0.0 },
                    }
                })
                .collect();
            let q = std::mem::take(&mut queuing_in_bin);
            report.samples.push(Sample {
                t: (now - epoch).as_secs_f64(),
                capacity_bps: link.capacity(now).as_f64(),
                queuing_ms: if q.1 > 0 { q.0.as_secs_f64() * 1000.0 / q.1 as f64 } else { 0.0 },
                flows: samples,
            });
            next_sample += scenario.sample_interval;
        }
        // 7. Step to the next event.
        let mut next = next_sample.min(end);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = next.min(t.max(now + Duration::from_micros(1)));
            }
        };
        consider(link.next_event());
        consider(feedback.front().map(|f| f.0));
        for f in &flows {
            if now < f.start {
                consider(Some(f.start));
                continue;
            }
            consider(f.sender.bwe.poll_timeout());
            if f.active(now) {
                consider(Some(f.sender.next_send()));
            }
            consider(Some(f.receiver.next_report()));
        }
        now = next;
    }
    report.finish(&flows.iter().map(|f| f.sender.bwe.stats()).collect::<Vec<_>>(), link.drops);
    report
}

impl Flow {
    fn sender_index(&self) -> usize {
        self.sender.index()
    }
}
