//! The media plane's I/O.
//!
//! A [`MediaPlane`] runs one worker shard per core. Each shard is a thread that owns one UDP
//! socket (its own port), the peer connections multiplexed on it and their timers, and drives
//! webrtc-rs's sans-IO `rtc` core from its own loop: datagram in -> `handle_read`, then drain
//! `poll_write` / `poll_event` / `poll_read` of every connection touched, then sleep until a
//! datagram, a command or the earliest `poll_timeout`. A new connection is found by the ICE
//! username of its first STUN packet, later packets by remote address.
//!
//! Forwarding decisions come from `sfu-core`; this crate only applies them. A publisher's packet
//! is decrypted once on its shard and handed as an `Arc` to every shard holding a subscriber.

mod api;
mod error;
mod feedback_interceptor;
mod ids;
mod metrics;
mod peer_factory;
mod plane;
mod read_filter;
mod rejection;
mod repair_tap;
mod sdp_candidates;
mod send_batch;
mod shard;
mod stun;
mod udp_stats;

pub use api::{DownTrackSpec, MediaEvent, PublishedTrack, PublisherAnswer, SubscriberOffer};
pub use error::MediaError;
pub use ids::{ConnId, TrackKey};
pub use peer_factory::Direction;
pub use plane::{MediaConfig, MediaPlane};
