//! What a simulation run recorded, and the RFC 8868-style figures computed from it.

use std::fmt::Write as _;
use std::time::Duration;

use super::Scenario;
use crate::BweStats;

/// Samples are averaged over this many bins when judging reaction and rise times (300 ms at the
/// default 100 ms sampling): a single bin is too coarse at low rates (a few packets).
const SMOOTH_BINS: usize = 3;

/// One flow in one sample interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlowSample {
    /// The flow was between its start and stop time when sampled.
    pub active: bool,
    /// Everything sent (media + padding), bit/s.
    pub send_bps: f64,
    /// Media sent, bit/s.
    pub media_send_bps: f64,
    /// Media delivered to the receiver, bit/s.
    pub recv_media_bps: f64,
    /// Everything delivered, bit/s.
    pub recv_bps: f64,
    /// The estimate at the end of the interval.
    pub estimate_bps: f64,
}

/// All flows at the end of one sample interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    /// Link capacity at the sample time, bit/s.
    pub capacity_bps: f64,
    /// Mean queuing delay of the packets delivered in the interval.
    pub queuing_ms: f64,
    /// One entry per flow, in [`super::Scenario::flows`] order.
    pub flows: Vec<FlowSample>,
}

/// The outcome of [`super::run`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// The time series, one entry per sample interval.
    pub samples: Vec<Sample>,
    /// Final estimator stats per flow.
    pub stats: Vec<BweStats>,
    /// Packets dropped at the bottleneck (tail drop + random loss).
    pub drops: u64,
    queuing_sum: Duration,
    delivered: u64,
    flows: usize,
}

impl Report {
    pub(crate) fn new(s: &Scenario, flows: usize) -> Self {
        Report { name: s.name.clone(), flows, ..Report::default() }
    }

    pub(crate) fn add_queuing(&mut self, q: Duration) {
        self.queuing_sum += q;
        self.delivered += 1;
    }

    pub(crate) fn finish(&mut self, stats: &[BweStats], drops: u64) {
        self.stats = stats.to_vec();
        self.drops = drops;
    }

    /// Mean queuing delay over every delivered packet, ms.
    pub fn mean_queuing_ms(&self) -> f64 {
        if self.delivered == 0 {
            return 0.0;
        }
        self.queuing_sum.as_secs_f64() * 1000.0 / self.delivered as f64
    }

    /// `f(sample)` averaged over the trailing [`SMOOTH_BINS`] samples, at each sample index.
    fn smoothed(&self, i: usize, f: impl Fn(&Sample) -> f64) -> f64 {
        let from = (i + 1).saturating_sub(SMOOTH_BINS);
        let xs = &self.samples[from..=i];
        xs.iter().map(f).sum::<f64>() / xs.len() as f64
    }

    /// Seconds after `at` until the total send rate (padding included, 300 ms average) is below
    /// `capacity_bps`.
    pub fn drop_reaction(&self, at: f64, capacity_bps: f64) -> Option<f64> {
        let total = |s: &Sample| s.flows.iter().map(|f| f.send_bps).sum::<f64>();
        (0..self.samples.len())
            .filter(|i| self.samples[*i].t > at)
            .find(|i| self.smoothed(*i, total) < capacity_bps)
            .map(|i| self.samples[i].t - at)
    }

    /// Seconds after `at` until the total media send rate (300 ms average) reaches
    /// `fraction × capacity_bps`.
    pub fn rise_time(&self, at: f64, capacity_bps: f64, fraction: f64) -> Option<f64> {
        let media = |s: &Sample| s.flows.iter().map(|f| f.media_send_bps).sum::<f64>();
        (0..self.samples.len())
            .filter(|i| self.samples[*i].t > at)
            .find(|i| self.smoothed(*i, media) >= fraction * capacity_bps)
            .map(|i| self.samples[i].t - at)
    }

    fn window(&self, from: f64, to: f64) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.t > from && s.t <= to)
    }

    /// Delivered media over offered capacity in `(from, to]`.
    pub fn utilization(&self, from: f64, to: f64) -> f64 {
        let (used, cap) = self.window(from, to).fold((0.0, 0.0), |(u, c), s| {
            (u + s.flows.iter().map(|f| f.recv_media_bps).sum::<f64>(), c + s.capacity_bps)
        });
        if cap > 0.0 { used / cap } else { 0.0 }
    }

    /// Mean delivered media rate of each flow in `(from, to]`, bit/s.
    pub fn flow_rates(&self, from: f64, to: f64) -> Vec<f64> {
        let n = self.window(from, to).count().max(1) as f64;
        (0..self.flows).map(|i| self.window(from, to).map(|s| s.flows[i].recv_media_bps).sum::<f64>() / n).collect()
    }

    /// Mean queuing delay of the samples in `(from, to]`, ms.
    pub fn queuing_ms_in(&self, from: f64, to: f64) -> f64 {
        let v: Vec<f64> = self.window(from, to).map(|s| s.queuing_ms).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }

    /// The time series as CSV: time, capacity, queuing delay, then per flow send, media send,
    /// delivered media and estimate (bit/s).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("t_s,capacity_bps,queuing_ms");
        for i in 0..self.flows {
            let _ = write!(out, ",f{i}_send_bps,f{i}_media_send_bps,f{i}_recv_media_bps,f{i}_estimate_bps");
        }
        out.push('\n');
        for s in &self.samples {
            let _ = write!(out, "{:.1},{:.0},{:.2}", s.t, s.capacity_bps, s.queuing_ms);
            for f in &s.flows {
                let _ = write!(
                    out,
                    ",{:.0},{:.0},{:.0},{:.0}",
                    f.send_bps, f.media_send_bps, f.recv_media_bps, f.estimate_bps
                );
            }
            out.push('\n');
        }
        out
    }
}

/// Jain's fairness index of `rates`: 1 when equal, 1/n when one flow has everything.
pub fn jain_index(rates: &[f64]) -> f64 {
    let sum: f64 = rates.iter().sum();
    let sq: f64 = rates.iter().map(|x| x * x).sum();
    if sq == 0.0 { 1.0 } else { sum * sum / (rates.len() as f64 * sq) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_table() {
        let cases: &[(&[f64], f64)] =
            &[(&[1.0, 1.0, 1.0], 1.0), (&[1.0, 0.0], 0.5), (&[3.0, 1.0], 0.8), (&[0.0, 0.0], 1.0)];
        for (rates, want) in cases {
            assert!((jain_index(rates) - want).abs() < 1e-9, "{rates:?}");
        }
    }

    fn report(rates: &[(f64, f64)]) -> Report {
        // (send bps, capacity bps) per 100 ms sample, one flow
        let samples = rates
            .iter()
            .enumerate()
            .map(|(i, (send, cap))| Sample {
                t: (i + 1) as f64 * 0.1,
                capacity_bps: *cap,
                queuing_ms: 0.0,
                flows: vec![FlowSample {
                    active: true,
                    send_bps: *send,
                    media_send_bps: *send,
                    recv_media_bps: send.min(*cap),
                    recv_bps: send.min(*cap),
                    estimate_bps: *send,
                }],
            })
            .collect();
        Report { samples, flows: 1, ..Report::default() }
    }

    #[test]
    fn reaction_rise_and_utilization() {
        let r = report(&[(1.0, 1.0), (1.0, 0.5), (1.0, 0.5), (0.4, 0.5), (0.4, 0.5), (0.4, 0.5), (0.4, 0.5)]);
        // Change at 0.15 s: the 3-bin mean drops under 0.5 at t = 0.6.
        let t = r.drop_reaction(0.15, 0.5).unwrap();
        assert!((t - 0.45).abs() < 1e-9, "{t}");
        let up = report(&[(0.5, 1.0), (0.6, 1.0), (0.9, 1.0), (0.9, 1.0), (0.9, 1.0)]);
        let t = up.rise_time(0.0, 1.0, 0.85).unwrap();
        assert!((t - 0.5).abs() < 1e-9, "{t}");
        assert!((up.utilization(0.25, 0.5) - 0.9).abs() < 1e-9);
    }
}
