//! One UDP socket per allocation, bound in the configured port range, with a task that hands
//! what it reads to the driver (dropping it when the driver's queue is full).

use rand::Rng;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inputs::{Input, ShellCounters};
use crate::server::AllocId;

/// Ports tried before giving up on a full range (the allocation then gets 508).
const BIND_ATTEMPTS: usize = 64;
/// Largest datagram read; media stays under the path MTU.
const MAX_DATAGRAM: usize = 2048;

/// An open relay socket; dropping it stops its reader.
pub struct RelaySocket {
    pub socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

impl Drop for RelaySocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Binds a socket for `alloc` and starts its reader.
pub fn open(
    alloc: AllocId,
    ip: IpAddr,
    ports: &RangeInclusive<u16>,
    inputs: mpsc::Sender<Input>,
    counters: Arc<ShellCounters>,
) -> std::io::Result<RelaySocket> {
    let std_socket = bind_in_range(ip, ports)?;
    std_socket.set_nonblocking(true)?;
    let socket = Arc::new(UdpSocket::from_std(std_socket)?);
    let reader = tokio::spawn(read(alloc, socket.clone(), inputs, counters));
    Ok(RelaySocket { socket, reader })
}

fn bind_in_range(ip: IpAddr, ports: &RangeInclusive<u16>) -> std::io::Result<std::net::UdpSocket> {
    let (first, last) = (*ports.start(), *ports.end());
    if first == 0 || last < first {
        return std::net::UdpSocket::bind(SocketAddr::new(ip, 0));
    }
    let span = (last - first) as usize + 1;
    let start = rand::rng().random_range(0..span);
    let mut last_error = None;
    for i in 0..span.min(BIND_ATTEMPTS) {
        let port = first + ((start + i) % span) as u16;
        match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("empty relay port range")))
}

async fn read(alloc: AllocId, socket: Arc<UdpSocket>, inputs: mpsc::Sender<Input>, counters: Arc<ShellCounters>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors of earlier sends surface here on some systems; the socket still works.
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset) =>
            {
                continue;
            }
            Err(_) => return,
        };
        match inputs.try_send(Input::Peer { alloc, from, data: buf[..n].to_vec() }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
