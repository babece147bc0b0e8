//! The shard's fuzz targets: each takes arbitrary bytes and drives one of its input paths as the
//! network (or a hostile client) could. Built with the `fuzzing` feature; `fuzz/` runs them under
//! libFuzzer and `crates/sfu-fuzz` replays their corpora in ordinary `cargo test`.
//!
//! A target panics only when an invariant it states is broken: a panic on input from the
//! network is a bug in the server.

mod demux;
mod offer;
mod relay;
mod rtcp;
mod sequence;

pub use demux::demux;
pub use offer::sdp_offer;
pub use relay::relay_sequence;
pub use rtcp::subscriber_rtcp;
pub use sequence::shard_sequence;
