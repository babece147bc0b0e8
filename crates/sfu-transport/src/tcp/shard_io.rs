//! A shard shell's ICE-TCP connections: the sockets it adopted from the listener, a reading and
//! a writing task for each (on the shard's own thread), and the glue between them and the core.
//! What to accept, when to close and what to drop is decided by `TcpSockets` and `OutQueue`;
//! this is the I/O around them.

use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::CloseReason;
use super::framing::FrameDecoder;
use super::listener::TcpHandoff;
use super::metrics::TcpMetrics;
use super::out_queue::{OutQueue, TcpDrop};
use super::sockets::TcpSockets;

/// Frames read from all of a shard's connections and not yet taken by its loop. A reader that
/// finds it full waits, and TCP slows its client down.
const INBOX_FRAMES: usize = 1024;

/// Bytes asked of the kernel per read.
const READ_BYTES: usize = 16 * 1024;

/// Frames handed to one vectored write.
const WRITE_FRAMES: usize = 64;

/// What the reading and writing tasks tell the shard.
pub(crate) enum TcpInput {
    /// A frame read from `remote` at `at`.
    Frame { remote: SocketAddr, frame: Bytes, at: Instant },
    /// The connection ended, or must.
    Closed { remote: SocketAddr, reason: CloseReason },
}

/// Something for the shard's loop: a connection from the listener, or from a connection.
pub(crate) enum TcpEvent {
    Adopt(TcpHandoff),
    Input(TcpInput),
}

/// One adopted connection. Its queue and wakeup are shared with its writing task (on this same
/// thread: the locks are never contended, `Arc` only keeps the shell `Send` until its thread
/// starts).
struct Connection {
    out: Arc<Mutex<OutQueue>>,
    wake_writer: Arc<Notify>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    /// The tasks hold the socket; once they end (and this is gone) it closes.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A shard's ICE-TCP side.
pub(crate) struct ShardTcp {
    sockets: TcpSockets,
    connections: HashMap<SocketAddr, Connection>,
    handoffs: mpsc::UnboundedReceiver<TcpHandoff>,
    /// The listener still runs (its channel is open).
    listening: bool,
    inbox: mpsc::Receiver<TcpInput>,
    inbox_tx: mpsc::Sender<TcpInput>,
    metrics: TcpMetrics,
}

impl ShardTcp {
    pub fn new(shard: usize, handoffs: mpsc::UnboundedReceiver<TcpHandoff>) -> Self {
        let (inbox_tx, inbox) = mpsc::channel(INBOX_FRAMES);
        Self {
            sockets: TcpSockets::default(),
            connections: HashMap::new(),
            handoffs,
            listening: true,
            inbox,
            inbox_tx,
            metrics: TcpMetrics::new(shard),
        }
    }

    /// Waits for the next connection or input.
    pub async fn next(&mut self) -> TcpEvent {
        loop {
            tokio::select! {
                handoff = self.handoffs.recv(), if self.listening => match handoff {
                    Some(handoff) => return TcpEvent::Adopt(handoff),
                    None => self.listening = false,
                },
                // Never closed: this holds a sender.
                Some(input) = self.inbox.recv() => return TcpEvent::Input(input),
            }
        }
    }

    /// An input already waiting, if any (to read a burst in one wakeup).
    pub fn try_next(&mut self) -> Option<TcpEvent> {
        self.inbox.try_recv().ok().map(TcpEvent::Input)
    }

    /// Takes a connection from the listener (within the shard's runtime): its tasks start
    /// reading, the first frame included.
    pub fn adopt(&mut self, handoff: TcpHandoff) {
        let TcpHandoff { stream, remote, decoder, accepted } = handoff;
        if self.sockets.contains(remote) {
            self.close(remote, CloseReason::PeerClosed);
        }
        if let Err(reason) = self.sockets.admit(remote, accepted) {
            self.metrics.closed(reason);
            return;
        }
        let stream = match stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
            Ok(stream) => Rc::new(stream),
            Err(e) => {
                tracing::debug!(%remote, error = %e, "cannot register an ICE-TCP connection");
                self.sockets.remove(remote);
                self.metrics.closed(CloseReason::IoError);
                return;
            }
        };
        let out = Arc::new(Mutex::new(OutQueue::default()));
        let wake_writer = Arc::new(Notify::new());
        let reader = tokio::task::spawn_local(read_frames(stream.clone(), remote, decoder, self.inbox_tx.clone()));
        let writer = tokio::task::spawn_local(write_frames(
            stream,
            remote,
            out.clone(),
            wake_writer.clone(),
            self.inbox_tx.clone(),
        ));
        self.connections.insert(remote, Connection { out, wake_writer, tasks: [reader, writer] });
        self.report_open();
    }

    /// A frame from `remote`: returns it if it is for the core, else closes the connection
    /// (something other than STUN before it was proven).
    pub fn take_frame(&mut self, remote: SocketAddr, frame: &[u8], at: Instant) -> bool {
        match self.sockets.on_frame_in(remote, frame, at) {
            Ok(()) => {
                self.metrics.frames_in.increment(1);
                true
            }
            Err(reason) => {
                self.close(remote, reason);
                false
            }
        }
    }

    /// The core sends `datagram` to `remote`: framed into its connection's queue, or dropped
    /// with a reason.
    pub fn send(&mut self, remote: SocketAddr, datagram: &[u8]) {
        let was_proven = self.sockets.is_authenticated(remote);
        if !self.sockets.on_frame_out(remote, datagram) {
            self.metrics.dropped(TcpDrop::NoConnection, 1);
            return;
        }
        if !was_proven && self.sockets.is_authenticated(remote) {
            self.metrics.authenticated.increment(1);
            self.report_open();
        }
        let Some(connection) = self.connections.get(&remote) else { return };
        let pushed = connection.out.lock().unwrap_or_else(PoisonError::into_inner).push(datagram);
        match pushed {
            Ok(0) => {}
            Ok(evicted) => self.metrics.dropped(TcpDrop::MediaEvicted, evicted as u64),
            Err(reason) => {
                self.metrics.dropped(reason, 1);
                return;
            }
        }
        connection.wake_writer.notify_one();
    }

    /// Closes `remote`'s connection. Returns whether it was open (the core is then told its
    /// path is gone).
    pub fn close(&mut self, remote: SocketAddr, reason: CloseReason) -> bool {
        let known = self.sockets.remove(remote);
        self.connections.remove(&remote);
        if known {
            tracing::debug!(%remote, reason = reason.as_str(), "ICE-TCP connection closed");
            self.metrics.closed(reason);
            self.report_open();
        }
        known
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sockets.poll_timeout()
    }

    /// Closes the connections whose time ran out; returns their addresses.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<SocketAddr> {
        let expired = self.sockets.handle_timeout(now);
        let mut closed = Vec::with_capacity(expired.len());
        for (remote, reason) in expired {
            self.connections.remove(&remote);
            tracing::debug!(%remote, reason = reason.as_str(), "ICE-TCP connection closed");
            self.metrics.closed(reason);
            closed.push(remote);
        }
        if !closed.is_empty() {
            self.report_open();
        }
        closed
    }

    fn report_open(&self) {
        let (unproven, proven) = self.sockets.counts();
        self.metrics.unauthenticated_open.set(unproven as f64);
        self.metrics.authenticated_open.set(proven as f64);
    }
}

/// Reads `remote`'s frames into the shard's inbox, starting with what the listener read.
async fn read_frames(
    stream: Rc<TcpStream>,
    remote: SocketAddr,
    mut decoder: FrameDecoder,
    inbox: mpsc::Sender<TcpInput>,
) {
    let mut buf = vec![0u8; READ_BYTES];
    let reason = loop {
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let input = TcpInput::Frame { remote, frame, at: Instant::now() };
                    if inbox.send(input).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = inbox.send(TcpInput::Closed { remote, reason: error.into() }).await;
                    return;
                }
            }
        }
        if stream.readable().await.is_err() {
            break CloseReason::IoError;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => break CloseReason::PeerClosed,
            Ok(n) => decoder.extend(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break CloseReason::PeerClosed,
            Err(_) => break CloseReason::IoError,
        }
    };
    let _ = inbox.send(TcpInput::Closed { remote, reason }).await;
}

/// Writes what the shard queues for `remote`, as the socket takes it.
async fn write_frames(
    stream: Rc<TcpStream>,
    remote: SocketAddr,
    out: Arc<Mutex<OutQueue>>,
    wake: Arc<Notify>,
    inbox: mpsc::Sender<TcpInput>,
) {
    let queue = || out.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if queue().is_empty() {
            wake.notified().await;
            continue;
        }
        if stream.writable().await.is_err() {
            break;
        }
        let written = {
            let queue = queue();
            stream.try_write_vectored(&queue.slices(WRITE_FRAMES))
        };
        match written {
            Ok(n) => queue().advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    let _ = inbox.send(TcpInput::Closed { remote, reason: CloseReason::IoError }).await;
}
