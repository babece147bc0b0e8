//! ICE-TCP (RFC 6544): clients that cannot use UDP reach the media plane over TCP, on one port
//! per node.
//!
//! Every connection announces a passive TCP host candidate at the node's announced address and
//! `tcp_port` (`peer_factory`), with a priority below its UDP one. A browser whose UDP is blocked
//! connects to it and frames each datagram with a 2-byte length (RFC 4571, `framing`).
//!
//! 1. **Listener** (`listener`, a thread of its own): accepts, and reads the connection's first
//!    frame, which must be a STUN Binding request. The first four hex digits of the ufrag its
//!    USERNAME names are the index of the shard that owns the connection
//!    (`IceCredentials::for_shard`), so the socket is handed to that shard without asking
//!    anyone. Connections waiting for that frame are capped per node and time out.
//! 2. **Shard** (`shard_io`, in the shard's shell): adopts the socket, reads its frames on a task
//!    of the shard's own thread and gives each to the sans-IO core as a datagram from the
//!    connection's remote address over [`Transport::Tcp`](crate::remote::Transport): the core
//!    demultiplexes and answers it exactly as it does UDP (`shard::demux`). What the core sends to
//!    a TCP remote leaves its send batch framed, into the connection's bounded queue
//!    (`out_queue`: media dropped before STUN, DTLS and RTCP), which a second task writes.
//! 3. **Proof** (`sockets`): until the connection's ICE agent answers one of its requests with
//!    a Binding success (the password was right), the connection may send only STUN, counts
//!    against a per-shard cap and is closed a few seconds after its accept. A proven connection
//!    is closed after the consent timeout without a frame.
//!
//! Every close has a [`CloseReason`] and every dropped datagram a `TcpDrop`, counted in
//! `/metrics` (`metrics`).

mod first_frame;
mod framing;
pub(crate) mod listener;
mod metrics;
mod out_queue;
pub(crate) mod shard_io;
mod sockets;
#[cfg(test)]
mod tests;

pub(crate) use listener::TcpHandoff;

/// Why the server closed (or refused) a client's ICE-TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// Accepted while the node already waited for the first frame of as many connections as
    /// it allows.
    PendingCap,
    /// The shard already held as many unproven connections as it allows.
    UnauthenticatedCap,
    /// The shard already held as many connections as it allows.
    ConnectionCap,
    /// Not proven (no first frame, or no request answered) within the time allowed.
    AuthTimeout,
    /// Proven, then silent for the consent timeout.
    Idle,
    /// Its first frame was not a STUN Binding request, or an unproven connection sent something
    /// other than STUN.
    NotStun,
    /// Its first request named no ufrag of ours (no USERNAME, or no shard by that number).
    UnknownUfrag,
    /// A frame longer than any datagram.
    Oversized,
    /// A frame of length zero.
    EmptyFrame,
    /// The client closed it (or reset it).
    PeerClosed,
    /// Reading or writing failed.
    IoError,
    /// The shard it was meant for has stopped.
    ShardGone,
    /// A frame for a connection the shard no longer knows.
    Unknown,
}

impl CloseReason {
    pub const ALL: [CloseReason; 13] = [
        Self::PendingCap,
        Self::UnauthenticatedCap,
        Self::ConnectionCap,
        Self::AuthTimeout,
        Self::Idle,
        Self::NotStun,
        Self::UnknownUfrag,
        Self::Oversized,
        Self::EmptyFrame,
        Self::PeerClosed,
        Self::IoError,
        Self::ShardGone,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingCap => "pending_cap",
            Self::UnauthenticatedCap => "unauthenticated_cap",
            Self::ConnectionCap => "connection_cap",
            Self::AuthTimeout => "auth_timeout",
            Self::Idle => "idle",
            Self::NotStun => "not_stun",
            Self::UnknownUfrag => "unknown_ufrag",
            Self::Oversized => "oversized",
            Self::EmptyFrame => "empty_frame",
            Self::PeerClosed => "peer_closed",
            Self::IoError => "io_error",
            Self::ShardGone => "shard_gone",
            Self::Unknown => "unknown",
        }
    }
}

impl From<framing::FrameError> for CloseReason {
    fn from(error: framing::FrameError) -> Self {
        match error {
            framing::FrameError::Oversized(_) => Self::Oversized,
            framing::FrameError::Empty => Self::EmptyFrame,
        }
    }
}
