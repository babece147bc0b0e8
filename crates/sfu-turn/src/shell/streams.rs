//! TCP and TLS clients: accepted within a total and a per-IP cap, cut into frames, closed on
//! garbage, on a frame over the limit, when the first frame (or the TLS handshake) is late, and
//! when they fall silent. Each connection's outgoing frames wait in a bounded queue; past it
//! they are dropped (counted), so a client that stops reading cannot grow the server's memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::inputs::{Input, ShellCounters};
use crate::framing::StreamFramer;
use crate::server::{ClientAddr, Transport};

/// Largest frame a client may send: a STUN request or ChannelData of one media packet fit many
/// times over. A bigger one closes the connection.
pub const MAX_FRAME: usize = 4096;
/// Frames queued for one connection before more are dropped.
pub const OUT_QUEUE: usize = 512;
const READ_CHUNK: usize = 4096;
/// Longest a write to a client may wait for room in its socket.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take, and stay silent.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub first_frame: Duration,
    pub idle: Duration,
}

/// One listener's kind.
pub struct Acceptor {
    pub transport: Transport,
    pub tls: Option<TlsAcceptor>,
    pub limits: StreamLimits,
}

/// Connection slots, in all and per IP; a slot is given back when its guard drops.
#[derive(Clone)]
pub struct Slots {
    inner: Arc<parking_lot::Mutex<(usize, HashMap<IpAddr, usize>)>>,
    total: usize,
    per_ip: usize,
}

pub struct Slot {
    slots: Slots,
    ip: IpAddr,
}

impl Slots {
    pub fn new(total: usize, per_ip: usize) -> Self {
        Slots { inner: Arc::default(), total, per_ip }
    }

    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut g = self.inner.lock();
        let (open, by_ip) = &mut *g;
        let from_ip = by_ip.entry(ip).or_default();
        if *open >= self.total || *from_ip >= self.per_ip {
            if *from_ip == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *open += 1;
        *from_ip += 1;
        Some(Slot { slots: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.slots.inner.lock();
        let (open, by_ip) = &mut *g;
        *open = open.saturating_sub(1);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until the task is dropped (its connections go with it).
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: Acceptor,
    inputs: mpsc::Sender<Input>,
    slots: Slots,
    counters: Arc<ShellCounters>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "TURN accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(peer.ip()) else {
            counters.streams_refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let client = ClientAddr { transport: acceptor.transport, addr: peer };
        let (inputs, counters, limits, tls) = (inputs.clone(), counters.clone(), acceptor.limits, acceptor.tls.clone());
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve(tcp, client, inputs, limits, counters).await,
                Some(tls) => match tokio::time::timeout(limits.first_frame, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => serve(stream, client, inputs, limits, counters).await,
                    Ok(Err(_)) => {
                        counters.streams_bad_input.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.streams_timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
        });
    }
}

/// Why a connection ended.
enum End {
    Closed,
    BadInput,
    TimedOut,
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    client: ClientAddr,
    inputs: mpsc::Sender<Input>,
    limits: StreamLimits,
    counters: Arc<ShellCounters>,
) {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    if inputs.send(Input::StreamOpened { client, out: out_tx }).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(MAX_FRAME);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut deadline = Instant::now() + limits.first_frame;
    let end = 'conn: loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break End::Closed,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_frame() {
                        Ok(Some(frame)) => {
                            deadline = Instant::now() + limits.idle;
                            if inputs.send(Input::StreamFrame { client, frame }).await.is_err() {
                                break 'conn End::Closed;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => break 'conn End::BadInput,
                    }
                }
            }
            out = out_rx.recv() => match out {
                Some(frame) => {
                    // A client that stops reading is closed rather than left to hold its slot.
                    match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&frame)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break End::Closed,
                        Err(_) => break End::TimedOut,
                    }
                }
                None => break End::Closed,
            },
            _ = tokio::time::sleep_until(deadline) => break End::TimedOut,
        }
    };
    match end {
        End::BadInput => counters.streams_bad_input.fetch_add(1, Ordering::Relaxed),
        End::TimedOut => counters.streams_timed_out.fetch_add(1, Ordering::Relaxed),
        End::Closed => 0,
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.shutdown()).await;
    let _ = inputs.send(Input::StreamClosed { client }).await;
}
