//! Probing: short bursts above the estimate that measure whether the path has headroom.
//!
//! The controller decides *when* and *how fast* to probe; the caller sends a [`ProbeCluster`]
//! (padding or RTX, tagged with the cluster id); the estimator measures, from the feedback about
//! those packets, the rate the receiver actually got.

mod controller;
mod estimator;
mod pacer;

use std::time::Duration;

use crate::Bitrate;

pub use controller::ProbeConfig;
pub(crate) use controller::{ProbeContext, ProbeController};
pub(crate) use estimator::{ProbeEstimator, ProbeOutcome};
pub use pacer::ProbePacer;

/// A burst the caller should send to measure headroom.
///
/// Send packets (padding, or RTX of recently sent media) tagged with [`SentPacket::probe_cluster`]
/// = `Some(id)`, paced at `target`, until at least `min_bytes` *and* `min_packets` have gone out.
/// Media sent meanwhile may be tagged too: everything on the wire during the burst counts.
///
/// [`SentPacket::probe_cluster`]: crate::SentPacket::probe_cluster
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    /// Identifier to tag the burst's packets with.
    pub id: u32,
    /// Rate to pace the burst at.
    pub target: Bitrate,
    /// Intended burst length (`min_bytes` at `target`).
    pub duration: Duration,
    /// Bytes to send at least.
    pub min_bytes: usize,
    /// Packets to send at least.
    pub min_packets: usize,
}

impl ProbeCluster {
    pub(crate) fn new(id: u32, target: Bitrate, duration: Duration, min_packets: usize) -> Self {
        ProbeCluster { id, target, duration, min_bytes: target.bytes_in(duration).ceil() as usize, min_packets }
    }
}

/// Why a probe was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeReason {
    /// Right after start: find the capacity quickly instead of ramping up from the start rate.
    Initial,
    /// A previous probe got through nearly in full: try twice as fast.
    Further,
    /// The application asked ([`crate::SendSideBwe::request_probe`]).
    Requested,
    /// The application wants more than the estimate and nothing has been congested for a while.
    Periodic,
}
