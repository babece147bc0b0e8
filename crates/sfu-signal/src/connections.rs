//! The HTTP accept loop: every connection gets a header read timeout and takes a slot, counted
//! globally and per client address, which it holds while its socket is open (through a WebSocket
//! upgrade too: the slot travels with the socket). A connection for which there is no slot is
//! answered `503` with a JSON body and closed. Shutdown is graceful: no new connections, and the
//! open ones finish the requests in flight.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// How long a refused connection may take to read its 503 (and the server to read what the
/// client sent, so that closing does not reset the connection and discard the answer).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// Refused connections lingering at once; past it, a refused connection is closed unanswered.
/// Small, because they hold descriptors beyond the cap (which the derived cap leaves room for).
const MAX_LINGERING_REFUSALS: usize = 64;
/// Bytes read from a refused connection before it is closed anyway.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

/// The connection caps.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Open connections in all.
    pub total: usize,
    /// Open connections per client address (IPv6: per /64); 0 = no cap.
    pub per_ip: usize,
    /// Loopback clients are not held to `per_ip`.
    pub exempt_loopback: bool,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Total,
    PerAddress,
}

impl Refusal {
    /// The `reason` label of `sfu_http_connections_rejected_total`.
    fn label(self) -> &'static str {
        match self {
            Refusal::Total => "global",
            Refusal::PerAddress => "per_ip",
        }
    }

    fn body(self) -> String {
        let (error, code) = match self {
            Refusal::Total => ("the server has too many open connections", "too_many_connections"),
            Refusal::PerAddress => ("too many open connections from this address", "too_many_connections_from_address"),
        };
        serde_json::json!({ "error": error, "code": code }).to_string()
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The open connections, against the caps.
pub struct Slots {
    caps: Caps,
    counts: Mutex<Counts>,
    lingering_refusals: AtomicUsize,
}

impl Slots {
    pub fn new(caps: Caps) -> Arc<Slots> {
        Arc::new(Slots { caps, counts: Mutex::default(), lingering_refusals: AtomicUsize::new(0) })
    }

    /// A slot for a connection from `ip`, or why there is none.
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let client = client_key(ip, self.caps.exempt_loopback);
        let mut counts = self.counts.lock();
        if counts.total >= self.caps.total {
            return Err(Refusal::Total);
        }
        let client = client.filter(|_| self.caps.per_ip > 0);
        if let Some(client) = client {
            let n = counts.per_client.entry(client).or_default();
            if *n >= self.caps.per_ip {
                return Err(Refusal::PerAddress);
            }
            *n += 1;
        }
        counts.total += 1;
        metrics::gauge!("sfu_http_connections").set(counts.total as f64);
        Ok(Slot { slots: self.clone(), client })
    }
}

/// Who a connection is counted against for the per-address cap: its address, IPv6 ones by
/// their /64 (one host usually holds a whole /64, so counting single addresses would cap
/// nothing). `None` for a loopback client when those are exempt.
fn client_key(ip: IpAddr, exempt_loopback: bool) -> Option<IpAddr> {
    let ip = ip.to_canonical();
    if exempt_loopback && ip.is_loopback() {
        return None;
    }
    Some(match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    })
}

/// A connection's place under the caps, given back when it drops.
struct Slot {
    slots: Arc<Slots>,
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock();
        counts.total -= 1;
        if let Some(client) = self.client
            && let Some(n) = counts.per_client.get_mut(&client)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_client.remove(&client);
            }
        }
        metrics::gauge!("sfu_http_connections").set(counts.total as f64);
    }
}

/// A connection's socket with its slot: hyper hands the socket to the WebSocket on upgrade, and
/// the slot goes with it, so it is freed when the socket closes, whoever holds it then.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the connections'
/// requests in flight (upgraded WebSockets are not waited for, as before: they end with the
/// process).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    slots: Arc<Slots>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    // Every connection task holds a sender; the receiver ends once they all have.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut stop = stop_rx.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        match slots.acquire(peer.ip()) {
            Ok(slot) => {
                let io = TokioIo::new(Counted { stream, _slot: slot });
                let service = TowerToHyperService::new(router.clone());
                let builder = builder.clone();
                let mut stop = stop_rx.clone();
                let open = open_tx.clone();
                tokio::spawn(async move {
                    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
                    let mut stopping = false;
                    let result = loop {
                        tokio::select! {
                            result = conn.as_mut() => break result,
                            _ = stopped(&mut stop), if !stopping => {
                                stopping = true;
                                conn.as_mut().graceful_shutdown();
                            }
                        }
                    };
                    if let Err(e) = result {
                        if e.is_timeout() {
                            metrics::counter!("sfu_http_header_timeouts_total").increment(1);
                        }
                        tracing::trace!(%peer, error = %e, "http connection ended with an error");
                    }
                    drop(open);
                });
            }
            Err(refusal) => {
                metrics::counter!("sfu_http_connections_rejected_total", "reason" => refusal.label()).increment(1);
                tracing::debug!(%peer, reason = refusal.label(), "http connection refused: at the connection cap");
                let lingering = slots.lingering_refusals.fetch_add(1, Ordering::Relaxed);
                if lingering >= MAX_LINGERING_REFUSALS {
                    slots.lingering_refusals.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                let slots = slots.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_LINGER, refuse(stream, refusal)).await;
                    slots.lingering_refusals.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
}

/// Resolves once shutdown began (or the signal is gone: then too).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Answers a connection past a cap with `503` and closes it, after reading what the client sent
/// (closing with unread data would reset the connection, and the reset could discard the answer).
async fn refuse(mut stream: TcpStream, refusal: Refusal) -> std::io::Result<()> {
    let body = refusal.body();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        match stream.read(&mut buf).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

/// A failed `accept`: one connection's trouble is skipped; anything else (out of descriptors,
/// say) is logged and waited out for a second, as hyper and axum do, rather than spun on.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "http accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(total: usize, per_ip: usize, exempt_loopback: bool) -> Arc<Slots> {
        Slots::new(Caps { total, per_ip, exempt_loopback })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_address_cap_counts_each_client_and_frees_on_drop() {
        let s = slots(10, 2, true);
        let a1 = s.acquire(ip("192.0.2.1")).unwrap();
        let _a2 = s.acquire(ip("192.0.2.1")).unwrap();
        assert_eq!(s.acquire(ip("192.0.2.1")).err(), Some(Refusal::PerAddress));
        // The same client over IPv4-mapped IPv6 (a dual-stack listener) is the same client.
        assert_eq!(s.acquire(ip("::ffff:192.0.2.1")).err(), Some(Refusal::PerAddress));
        let _b = s.acquire(ip("192.0.2.2")).unwrap();
        drop(a1);
        let _a3 = s.acquire(ip("192.0.2.1")).unwrap();
        assert_eq!(s.counts.lock().total, 3);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let s = slots(10, 1, true);
        let _a = s.acquire(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(s.acquire(ip("2001:db8:1:2:ffff::9")).err(), Some(Refusal::PerAddress));
        let _b = s.acquire(ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn loopback_is_exempt_from_the_per_address_cap_only_when_asked_and_never_from_the_total() {
        let s = slots(3, 1, true);
        let held: Vec<_> = (0..3).map(|_| s.acquire(ip("127.0.0.1")).unwrap()).collect();
        assert_eq!(s.acquire(ip("::1")).err(), Some(Refusal::Total));
        drop(held);
        assert!(s.counts.lock().per_client.is_empty());

        let s = slots(3, 1, false);
        let _a = s.acquire(ip("127.0.0.1")).unwrap();
        assert_eq!(s.acquire(ip("127.0.0.1")).err(), Some(Refusal::PerAddress));
    }

    #[test]
    fn no_per_address_cap_when_zero() {
        let s = slots(5, 0, false);
        let held: Vec<_> = (0..5).map(|_| s.acquire(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(s.acquire(ip("192.0.2.1")).err(), Some(Refusal::Total));
        assert!(s.counts.lock().per_client.is_empty());
        drop(held);
        assert_eq!(s.counts.lock().total, 0);
    }

    #[test]
    fn refusal_bodies_are_json_with_error_and_code() {
        for (r, code) in
            [(Refusal::Total, "too_many_connections"), (Refusal::PerAddress, "too_many_connections_from_address")]
        {
            let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
            assert_eq!(v["code"], code);
            assert!(v["error"].is_string());
        }
    }
}
