//! TURN for clients whose networks block UDP (docs/turn.md).
//!
//! Two halves:
//!
//! - [`credentials`]: time-limited TURN credentials in the TURN REST scheme (username
//!   `<expiry unix seconds>:<identity>`, password base64(HMAC-SHA1(secret, username))). Any
//!   standard TURN server configured with the same secret accepts them (coturn
//!   `use-auth-secret` + `static-auth-secret`), and so does the embedded one.
//! - An embedded TURN server (RFC 8656 over UDP, TCP and TLS) that relays **only** to this
//!   node's own media addresses: a permission, a channel or a Send towards any other address is
//!   refused (403 or dropped), so it is never an open relay. [`TurnCore`] is its sans-IO core;
//!   [`shell`] owns the sockets.
//!
//! # Driving the core
//!
//! [`TurnCore`] never reads the clock and owns no socket. Its driver:
//!
//! 1. calls an input with the current `now`: [`TurnCore::handle_client`] for a datagram (UDP) or
//!    a frame (TCP/TLS, cut by [`StreamFramer`]) from a client, [`TurnCore::handle_peer`] for a
//!    datagram that reached an allocation's relay socket, [`TurnCore::handle_relay_opened`] once
//!    it has bound the relay socket an [`Event::OpenRelay`] asked for,
//!    [`TurnCore::handle_client_closed`] when a stream client's connection ends, and
//!    [`TurnCore::handle_timeout`];
//! 2. sends every [`TurnCore::poll_transmit`] and acts on every [`TurnCore::poll_event`];
//! 3. sleeps until [`TurnCore::poll_timeout`], then calls `handle_timeout`.
//!
//! Wall-clock time (credential and nonce expiry) comes from one reading given to
//! [`TurnCore::new`] with the same moment's `Instant`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod credentials;
mod framing;
mod media_addresses;
mod nonce;
mod server;
pub mod shell;
mod stats;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod wire;

pub use crate::server::{AllocId, ClientAddr, CoreConfig, Event, Limits, Transmit, Transport, TurnCore, WallClock};
pub use framing::{FrameError, StreamFramer};
pub use media_addresses::MediaAddresses;
pub use shell::{RunningTurn, ShellConfig, StartError, TlsSettings, start};
pub use stats::TurnStats;
