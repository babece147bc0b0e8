//! What the shell's tasks hand the driver, and what the shell itself counts.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use tokio::sync::mpsc;

use crate::server::{AllocId, ClientAddr};

/// What connection and relay-socket tasks hand the driver.
pub enum Input {
    /// A TCP or TLS client connected; `out` takes the frames for it.
    StreamOpened { client: ClientAddr, out: mpsc::Sender<Vec<u8>> },
    /// A whole frame from a stream client.
    StreamFrame { client: ClientAddr, frame: Vec<u8> },
    /// A stream client's connection ended.
    StreamClosed { client: ClientAddr },
    /// A datagram on an allocation's relay socket.
    Peer { alloc: AllocId, from: SocketAddr, data: Vec<u8> },
}

/// What the shell itself drops or refuses, beside the core's counters.
#[derive(Default, Debug)]
pub struct ShellCounters {
    /// Datagrams and frames dropped at a full queue (the driver's, or a connection's).
    pub queue_full: AtomicU64,
    /// Connections closed at accept: the total or per-IP cap was reached.
    pub streams_refused: AtomicU64,
    /// Connections closed for garbage or a frame over `streams::MAX_FRAME`.
    pub streams_bad_input: AtomicU64,
    /// Connections closed for a late handshake or first frame, or silence.
    pub streams_timed_out: AtomicU64,
}
