//! [`BweConfig`] and [`BweStats`].

use std::time::Duration;

use crate::probe::ProbeConfig;
use crate::{BandwidthUsage, Bitrate, RateControlState};

/// Settings of one [`crate::SendSideBwe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BweConfig {
    /// Estimate before any feedback. 300 kbit/s is safe on nearly any path and, with the initial
    /// probes at 3× and 6×, reaches ~2 Mbit/s within the first second where the path allows.
    pub start_bitrate: Bitrate,
    /// The estimate never goes below this (audio plus the lowest video layer).
    pub min_bitrate: Bitrate,
    /// The estimate and every probe stay below this.
    pub max_bitrate: Bitrate,
    /// Probing knobs.
    pub probe: ProbeConfig,
}

impl Default for BweConfig {
    fn default() -> Self {
        BweConfig {
            start_bitrate: Bitrate::kbps(300),
            min_bitrate: Bitrate::kbps(30),
            max_bitrate: Bitrate::mbps(20),
            probe: ProbeConfig::default(),
        }
    }
}

/// A snapshot for metrics and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BweStats {
    /// The combined estimate ([`crate::SendSideBwe::estimate`]).
    pub estimate: Bitrate,
    /// The delay-based (AIMD) estimate.
    pub delay_based: Bitrate,
    /// The loss-based cap, while loss limits the estimate.
    pub loss_cap: Option<Bitrate>,
    /// The last REMB from the receiver, while fresh.
    pub remb: Option<Bitrate>,
    /// The acknowledged (delivered) bitrate.
    pub acked: Option<Bitrate>,
    /// The delay detector's verdict.
    pub usage: BandwidthUsage,
    /// The AIMD state.
    pub rate_state: RateControlState,
    /// Last measured loss fraction (0..=1).
    pub loss_fraction: f64,
    /// Smoothed round-trip time, once known.
    pub rtt: Option<Duration>,
    /// Last modified trend of the delay trendline; above `threshold` reads as overuse.
    pub trend: f64,
    /// The overuse detector's current adaptive threshold, in the same unit as `trend`.
    pub threshold: f64,
    /// Probe clusters handed out by [`crate::SendSideBwe::poll_probe`].
    pub probes_sent: u64,
    /// Probes whose result raised the estimate.
    pub probes_succeeded: u64,
    /// Probes that could not be measured (lost, too few packets).
    pub probes_failed: u64,
    /// Feedback reports processed.
    pub feedback_reports: u64,
    /// Congestion verdicts forgotten because nothing was sent or acknowledged for a while.
    pub verdicts_expired: u64,
}
