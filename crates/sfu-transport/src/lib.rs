//! The media plane: peer connections, their media and the forwarding between them.
//!
//! A [`MediaPlane`] runs one worker shard per core. Each shard is a thread that owns one UDP
//! socket (its own port) and every peer connection multiplexed on it. Forwarding decisions come
//! from `sfu-core` and bandwidth estimation from `sfu-bwe`; this crate applies them. A
//! publisher's packet is decrypted once on its shard and handed as an `Arc` to every shard
//! holding a subscriber of its track.
//!
//! # A shard is a sans-IO core and a thin shell
//!
//! `ShardCore` (`shard/core/`) holds all of a shard's state: its connections (webrtc-rs's
//! sans-IO `rtc` peer connections, each either a publisher or a subscriber), the demultiplexer
//! that tells which connection a datagram belongs to (`Demux`: by remote address once ICE has
//! validated it, by the ICE username of STUN before), the tracks published on it and the
//! fan-out of the tracks subscribed on it. It does no I/O and never reads the clock.
//! `ShardShell` (`shard/shell.rs`) owns the socket, the command queues and the clock, and
//! drives the core by this contract:
//!
//! 1. **Inputs carry their time.** Every input is a call with `now`, the instant it happened:
//!    `handle_datagram(bytes, from, now)` for each datagram read (stamped at its own read, since
//!    transport-cc reports arrival times back to publishers), `handle_command(command, now)`
//!    for a control-plane request or a message from another shard, `handle_timeout(now)` when
//!    the deadline last given by `poll_timeout` has passed, and `handle_receive_backlog(bytes,
//!    now)` for the socket's receive queue, the overload signal. A request's answer is sent on
//!    its reply channel before `handle_command` returns.
//! 2. **Settle after a batch.** Inputs mark the connections they touched; `settle(now)` drains
//!    those connections' stacks (what they write, their events, the application data they
//!    read) and re-files their timers. Call it after the batch of inputs, and again while it
//!    returns true: it pauses between published packets once a `sendmmsg` call's worth of
//!    datagrams or a command for another shard is waiting, so those leave before the rest.
//! 3. **Poll every output.** `transmits()` is the batch of datagrams to send (the shell hands
//!    it to `sendmmsg`, then calls `handle_transmitted(sent_at)`, which ends the fan-out delay
//!    of what it held); `poll_shard_command()` yields `(shard index, command)` for the other
//!    shards (the inter-shard protocol: `Downstream`, `LayersFlowing`, `LayerDemand`,
//!    `KeyframeRequest`, `Forward`, `AvailableLayers`); `poll_event()` yields [`MediaEvent`]s for the control
//!    plane. Outputs may be taken mid-batch: the shell sends the transmits early once a
//!    `sendmmsg` call's worth is queued, and other shards' commands without delay.
//! 4. **Sleep until the deadline.** `poll_timeout()` is the earliest instant anything in the
//!    core is due (a connection's stack, its consent, bandwidth estimator, sender reports,
//!    uplink NACKs, dynacast pauses, or the shard's periodic reports). Nothing happens in the
//!    core between inputs: a caller that never calls `handle_timeout` freezes its time.
//!
//! Because of this, the core runs the same in a test that wires several cores and in-memory
//! clients together and advances a virtual clock, as in the shell with real sockets.
//!
//! # ICE-TCP
//!
//! With a TCP port configured ([`MediaConfig::tcp_port`]), clients that cannot use UDP connect
//! to the node over TCP (RFC 6544, `tcp/`). The core sees their frames as datagrams from the
//! connection's remote address over TCP (`handle_datagram` takes a transport-tagged remote) and
//! answers them through the same transmits, tagged with the transport; the shell frames those on
//! the connection. So every rule of the core (demultiplexing, consent, forwarding) holds for
//! both transports.

mod api;
mod error;
mod feedback_interceptor;
mod ids;
pub mod load;
mod metrics;
mod opus;
mod peer_factory;
mod plane;
mod read_filter;
mod rejection;
mod relay;
mod remote;
mod repair_tap;
mod sdp_candidates;
mod send_batch;
mod shard;
mod stun;
mod tcp;
mod udp_stats;

/// The largest datagram a shard reads from its UDP socket, and so the largest ICE-TCP frame it
/// accepts: WebRTC keeps its packets within an MTU (about 1200 bytes of payload, DTLS included).
pub(crate) const MAX_DATAGRAM_LEN: usize = 2048;

/// Fuzz targets over the shard's input paths (see `fuzz/` at the top of the repository).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::shard::fuzz::*;
}

pub use api::{DownTrackSpec, MediaEvent, PublishedTrack, PublisherAnswer, SubscriberOffer};
pub use error::MediaError;
pub use ids::{ConnId, TrackKey};
pub use peer_factory::{DATA_MAX_MESSAGE_BYTES, DATA_SEND_MAX_BYTES, Direction};
pub use plane::{MediaConfig, MediaPlane};
pub use relay::{LinkId, LinkSpec, RelayEndpoint, RelayTrack, RelayTrackSpec, SrtpKeyMaterial};
