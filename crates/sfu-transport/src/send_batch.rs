//! Datagrams a shard queues while it handles one wakeup, sent together at its end with
//! `sendmmsg`: one system call per batch of up to [`MAX_PER_CALL`] datagrams instead of one per
//! datagram.

use bytes::Bytes;
use std::net::SocketAddr;

/// Datagrams handed to the kernel per call.
pub(crate) const MAX_PER_CALL: usize = 64;

#[derive(Default)]
pub(crate) struct SendBatch {
    queued: Vec<(SocketAddr, Bytes)>,
    /// Where a packet is marshalled before it is protected into its own datagram: reused, so
    /// the protected copy is the only allocation per datagram.
    scratch: Vec<u8>,
}

/// What a flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub sent: usize,
    /// Refused by the kernel (socket buffer full, unreachable destination): dropped.
    pub failed: usize,
    pub calls: usize,
}

impl SendBatch {
    pub fn push(&mut self, to: SocketAddr, datagram: Bytes) {
        self.queued.push((to, datagram));
    }

    /// A scratch buffer of `len` bytes (its contents are left over from earlier use).
    pub fn scratch(&mut self, len: usize) -> &mut [u8] {
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        &mut self.scratch[..len]
    }

    #[cfg(test)]
    pub fn queued(&self) -> &[(SocketAddr, Bytes)] {
        &self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Sends everything queued on `socket`, in order.
    pub fn flush(&mut self, socket: &impl std::os::fd::AsRawFd) -> Flushed {
        let mut flushed = Flushed::default();
        let mut rest = &self.queued[..];
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(MAX_PER_CALL)];
            flushed.calls += 1;
            match send_many(socket.as_raw_fd(), chunk) {
                Ok(0) | Err(_) => {
                    // The first datagram was refused: drop it and go on with the next.
                    flushed.failed += 1;
                    rest = &rest[1..];
                }
                Ok(n) => {
                    flushed.sent += n;
                    rest = &rest[n..];
                }
            }
        }
        self.queued.clear();
        flushed
    }
}

/// One `sendmmsg` call: how many of `datagrams` (from the first) the kernel took.
#[cfg(target_os = "linux")]
fn send_many(fd: std::os::fd::RawFd, datagrams: &[(SocketAddr, Bytes)]) -> std::io::Result<usize> {
    let addresses: Vec<socket2::SockAddr> = datagrams.iter().map(|(to, _)| socket2::SockAddr::from(*to)).collect();
    let mut iovecs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|(_, d)| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .zip(&addresses)
        .map(|(iov, addr)| {
            // SAFETY: an all-zero msghdr is valid (no control data, no flags).
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = addr.as_ptr() as *mut libc::c_void;
            header.msg_namelen = addr.len();
            header.msg_iov = iov as *mut libc::iovec;
            header.msg_iovlen = 1;
            libc::mmsghdr { msg_hdr: header, msg_len: 0 }
        })
        .collect();
    loop {
        // SAFETY: every header points at an address and an iovec that outlive the call, and the
        // iovecs at buffers owned by `datagrams`, which the kernel only reads.
        let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, libc::MSG_DONTWAIT) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Elsewhere: one `sendto` per datagram.
#[cfg(not(target_os = "linux"))]
fn send_many(fd: std::os::fd::RawFd, datagrams: &[(SocketAddr, Bytes)]) -> std::io::Result<usize> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the fd belongs to the caller's socket, which outlives this call.
    let socket = socket2::SockRef::from(unsafe { &BorrowedFd::borrow_raw(fd) });
    let mut sent = 0;
    for (to, datagram) in datagrams {
        match socket.send_to(datagram, &socket2::SockAddr::from(*to)) {
            Ok(_) => sent += 1,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn sends_every_datagram_in_order_in_few_calls() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::default();
        for i in 0..100u8 {
            batch.push(receiver.local_addr().unwrap(), Bytes::from(vec![i; 1 + i as usize]));
        }
        let flushed = batch.flush(&sender);
        assert_eq!(flushed, Flushed { sent: 100, failed: 0, calls: 2 });
        assert!(batch.is_empty());
        let mut buf = [0u8; 256];
        for i in 0..100u8 {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(n, 1 + i as usize);
            assert!(buf[..n].iter().all(|b| *b == i));
        }
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_still_go() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::default();
        // Larger than any UDP datagram can be: the kernel refuses it (EMSGSIZE).
        batch.push(receiver.local_addr().unwrap(), Bytes::from(vec![0u8; 70_000]));
        batch.push(receiver.local_addr().unwrap(), Bytes::from_static(b"after"));
        let flushed = batch.flush(&sender);
        assert_eq!((flushed.sent, flushed.failed), (1, 1));
        let mut buf = [0u8; 16];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
    }
}
