//! Send-side bandwidth estimation for the SFU's egress, sans-IO.
//!
//! One [`SendSideBwe`] per subscriber transport estimates how many bits per second can be sent to
//! that subscriber. It follows the structure of Google Congestion Control (GCC):
//!
//! * **delay-based**: transport-wide feedback gives each packet's arrival time; packets are grouped
//!   by send time, the inter-group delay variation is filtered by a trendline, and an overuse
//!   detector with an adaptive threshold says whether the bottleneck queue grows;
//! * **AIMD** turns that verdict into an estimate (multiplicative decrease to 0.85 × delivered
//!   rate, multiplicative or additive increase);
//! * **loss-based**: heavy loss caps the estimate;
//! * **probing**: short padding/RTX bursts above the estimate measure headroom — at start, on the
//!   application's request before an up-switch, and periodically while the application wants more;
//! * **REMB** from the client, when it sends one, caps the estimate too.
//!
//! See `docs/bwe.md` for every constant and the reasoning behind it.
//!
//! # Driving it
//!
//! Nothing here reads the clock, spawns or blocks: time is an argument. The owner (the egress of
//! one subscriber) does:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sfu_bwe::{BweConfig, SendSideBwe, SentPacket, TransportFeedback};
//!
//! let t0 = Instant::now(); // the caller's clock, read by the caller
//! let mut bwe = SendSideBwe::new(BweConfig::default(), t0);
//! // After every packet put on the wire:
//! bwe.on_packet_sent(SentPacket { transport_seq: 0, size: 1200, at: t0, probe_cluster: None });
//! // On every TWCC report (converted by the transport):
//! let fb = TransportFeedback { base_seq: 0, arrivals: vec![Some(Duration::from_millis(40))] };
//! bwe.on_feedback(&fb, t0 + Duration::from_millis(90));
//! // On timers: fire when due, then ask again.
//! if let Some(at) = bwe.poll_timeout() {
//!     bwe.handle_timeout(at.max(t0));
//! }
//! // Probes to send (padding or RTX tagged with the cluster id), and the estimate to allocate:
//! while let Some(cluster) = bwe.poll_probe(t0) {
//!     let _ = cluster; // hand to the pacer
//! }
//! let _budget = bwe.estimate();
//! ```
//!
//! The [`sim`] module holds a seeded, virtual-time link simulator (bottleneck queue, delay, loss,
//! feedback path, several flows) used by this crate's tests and available to others.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod acked;
mod aimd;
mod bitrate;
mod config;
mod delay;
mod estimator;
mod feedback;
mod history;
mod loss;
mod probe;
pub mod sim;

pub use aimd::RateControlState;
pub use bitrate::Bitrate;
pub use config::{BweConfig, BweStats};
pub use delay::BandwidthUsage;
pub use estimator::SendSideBwe;
pub use feedback::{SentPacket, TransportFeedback};
pub use probe::{ProbeCluster, ProbeConfig, ProbePacer};
