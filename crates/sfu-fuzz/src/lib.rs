//! Fuzz targets: each takes arbitrary bytes and drives one path that input from the network
//! takes into the server, stating what must hold whatever the bytes. `fuzz/` runs them under
//! libFuzzer (see its README); `tests/replay.rs` replays every input kept in `fuzz/corpus` and
//! `fuzz/regressions` through them in an ordinary `cargo test`, so a crash once found and fixed
//! stays fixed on stable Rust with no fuzzer installed.
//!
//! A target panics only on a broken invariant; a panic is a bug in the server.

#![forbid(unsafe_code)]

mod keyframe;
mod router;
mod rtp;
mod signal;
mod turn;

pub use keyframe::keyframe;
pub use router::router_sequence;
pub use rtp::rtp_packet;
pub use sfu_transport::fuzzing::{
    demux as stun_demux, relay_sequence, sdp_offer, shard_sequence, subscriber_rtcp as rtcp_feedback,
};
pub use signal::signal_message;
pub use turn::turn_sequence;

/// One fuzz target: its name (the `fuzz/fuzz_targets/<name>.rs` binary and the
/// `fuzz/corpus/<name>` directory) and its entry point.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target { name: "stun_demux", run: stun_demux },
    Target { name: "rtp_packet", run: rtp_packet },
    Target { name: "keyframe", run: keyframe },
    Target { name: "rtcp_feedback", run: rtcp_feedback },
    Target { name: "signal_message", run: signal_message },
    Target { name: "sdp_offer", run: sdp_offer },
    Target { name: "router_sequence", run: router_sequence },
    Target { name: "shard_sequence", run: shard_sequence },
    Target { name: "relay_sequence", run: relay_sequence },
    Target { name: "turn_sequence", run: turn_sequence },
];
