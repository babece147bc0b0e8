//! The node's ICE-TCP port: accepts connections, reads each one's first frame and hands the
//! connection to the shard its ufrag names. A thread of its own, so a flood of connections
//! costs no shard its time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::CloseReason;
use super::first_frame::route_first_frame;
use super::framing::FrameDecoder;
use super::metrics::ListenerMetrics;
use super::sockets::AUTH_TIMEOUT;

/// Connections per node waiting for their first frame. A browser's first frame follows its
/// connect at once; past this many, new connections are closed as they are accepted.
pub(crate) const MAX_PENDING: usize = 256;

/// Bytes asked of the kernel per read while waiting for the first frame.
const FIRST_READ_BYTES: usize = 2048;

/// A connection whose first frame named shard `i`, on its way to that shard.
pub(crate) struct TcpHandoff {
    pub stream: std::net::TcpStream,
    pub remote: SocketAddr,
    /// What was read so far: the first frame, whole, and perhaps the start of what followed.
    pub decoder: FrameDecoder,
    /// When the connection was accepted: its time to be proven runs from then.
    pub accepted: Instant,
}

/// Starts the listener thread on `listener` (bound, non-blocking); connections go to
/// `shards[i]`.
pub(crate) fn start(
    listener: std::net::TcpListener,
    shards: Vec<mpsc::UnboundedSender<TcpHandoff>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("media-tcp-listen".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => accept_loop(listener, Arc::new(shards)).await,
                Err(e) => tracing::error!(error = %e, "cannot register the ICE-TCP listener"),
            }
        });
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, shards: Arc<Vec<mpsc::UnboundedSender<TcpHandoff>>>) {
    let metrics = Arc::new(ListenerMetrics::new());
    let pending = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let accepted = Instant::now();
        metrics.accepted.increment(1);
        if pending.load(Ordering::Relaxed) >= MAX_PENDING {
            metrics.closed(CloseReason::PendingCap);
            continue;
        }
        pending.fetch_add(1, Ordering::Relaxed);
        metrics.pending.increment(1.0);
        let (shards, metrics, pending) = (shards.clone(), metrics.clone(), pending.clone());
        tokio::spawn(async move {
            let outcome = tokio::time::timeout_at((accepted + AUTH_TIMEOUT).into(), first_frame(&stream, shards.len()))
                .await
                .unwrap_or(Err(CloseReason::AuthTimeout));
            pending.fetch_sub(1, Ordering::Relaxed);
            metrics.pending.decrement(1.0);
            let handed = outcome.and_then(|(shard, decoder)| {
                // Media is small frames that must not wait for more to coalesce.
                let _ = stream.set_nodelay(true);
                let stream = stream.into_std().map_err(|_| CloseReason::IoError)?;
                let handoff = TcpHandoff { stream, remote, decoder, accepted };
                shards[shard].send(handoff).map_err(|_| CloseReason::ShardGone)
            });
            if let Err(reason) = handed {
                tracing::debug!(%remote, reason = reason.as_str(), "ICE-TCP connection closed before a shard took it");
                metrics.closed(reason);
            }
        });
    }
}

/// Reads until the first frame is whole; returns the shard it names and what was read.
async fn first_frame(stream: &tokio::net::TcpStream, shards: usize) -> Result<(usize, FrameDecoder), CloseReason> {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; FIRST_READ_BYTES];
    loop {
        if let Some(frame) = decoder.peek_frame()? {
            return route_first_frame(frame, shards).map(|shard| (shard, decoder));
        }
        stream.readable().await.map_err(|_| CloseReason::IoError)?;
        match stream.try_read(&mut buf) {
            Ok(0) => return Err(CloseReason::PeerClosed),
            Ok(n) => decoder.extend(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(CloseReason::IoError),
        }
    }
}
