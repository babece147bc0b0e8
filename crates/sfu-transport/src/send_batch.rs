//! Datagrams a shard queues while it handles one wakeup, sent together at its end with
//! `sendmmsg`: one system call per batch of up to [`MAX_PER_CALL`] datagrams instead of one per
//! datagram.
//!
//! Forwarded media is written straight into the batch's own buffer and protected there
//! ([`SendBatch::push_with`]): no allocation and no copy per datagram. Everything else the
//! stack writes arrives as `Bytes` and is queued as it is.
//!
//! A datagram for a client reached over ICE-TCP is queued the same way, with its transport; the
//! flush hands it to the caller, which frames it on that client's connection.

use bytes::Bytes;
use std::net::SocketAddr;
use std::ops::Range;

use crate::remote::{Remote, Transport};

/// Datagrams handed to the kernel per call.
pub(crate) const MAX_PER_CALL: usize = 64;
/// A written buffer that grew past this (a burst of retransmissions) is given back after the
/// flush; the usual batch of [`MAX_PER_CALL`] copies stays well under it.
const KEPT_WRITTEN_CAPACITY: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct SendBatch {
    queued: Vec<(Remote, Datagram)>,
    /// The bytes of every [`Datagram::Written`] queued.
    written: Vec<u8>,
}

enum Datagram {
    Shared(Bytes),
    Written(Range<usize>),
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
    pub fn push(&mut self, to: impl Into<Remote>, datagram: Bytes) {
        self.queued.push((to.into(), Datagram::Shared(datagram)));
    }

    /// Queues a datagram of `len` bytes that `write` fills in place (its initial contents are
    /// unspecified). If `write` fails nothing is queued.
    pub fn push_with<E>(
        &mut self,
        to: impl Into<Remote>,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.written.len();
        self.written.resize(start + len, 0);
        match write(&mut self.written[start..]) {
            Ok(()) => {
                self.queued.push((to.into(), Datagram::Written(start..start + len)));
                Ok(())
            }
            Err(e) => {
                self.written.truncate(start);
                Err(e)
            }
        }
    }

    fn bytes<'a>(&'a self, datagram: &'a Datagram) -> &'a [u8] {
        match datagram {
            Datagram::Shared(bytes) => bytes,
            Datagram::Written(range) => &self.written[range.clone()],
        }
    }

    #[cfg(test)]
    pub fn queued(&self) -> Vec<(SocketAddr, &[u8])> {
        self.queued.iter().map(|(to, d)| (to.addr, self.bytes(d))).collect()
    }

    /// Takes everything queued, in order, as if it had been sent: the virtual-time tests route
    /// datagrams in memory instead of through a socket (and so do the fuzz targets).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn drain(&mut self) -> Vec<(SocketAddr, Bytes)> {
        self.drain_remotes().into_iter().map(|(to, d)| (to.addr, d)).collect()
    }

    /// [`Self::drain`] with each datagram's transport.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn drain_remotes(&mut self) -> Vec<(Remote, Bytes)> {
        let out = self.queued.iter().map(|(to, d)| (*to, Bytes::copy_from_slice(self.bytes(d)))).collect();
        self.queued.clear();
        self.written.clear();
        out
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Sends everything queued for UDP on `socket`, in order, and hands each datagram for a TCP
    /// client to `tcp` (in order too), which frames it on that client's connection.
    pub fn flush(&mut self, socket: &impl std::os::fd::AsRawFd, mut tcp: impl FnMut(SocketAddr, &[u8])) -> Flushed {
        let mut flushed = Flushed::default();
        let mut datagrams: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(self.queued.len());
        for (to, datagram) in &self.queued {
            match to.transport {
                Transport::Udp => datagrams.push((to.addr, self.bytes(datagram))),
                Transport::Tcp => tcp(to.addr, self.bytes(datagram)),
            }
        }
        let mut rest = &datagrams[..];
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
        drop(datagrams);
        self.queued.clear();
        self.written.clear();
        if self.written.capacity() > KEPT_WRITTEN_CAPACITY {
            self.written.shrink_to(KEPT_WRITTEN_CAPACITY / 4);
        }
        flushed
    }
}

/// One `sendmmsg` call: how many of `datagrams` (from the first) the kernel took.
#[cfg(target_os = "linux")]
fn send_many(fd: std::os::fd::RawFd, datagrams: &[(SocketAddr, &[u8])]) -> std::io::Result<usize> {
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
        let sent =
            unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, libc::MSG_DONTWAIT) };
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
fn send_many(fd: std::os::fd::RawFd, datagrams: &[(SocketAddr, &[u8])]) -> std::io::Result<usize> {
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
            let (to, len) = (receiver.local_addr().unwrap(), 1 + i as usize);
            if i % 2 == 0 {
                batch.push(to, Bytes::from(vec![i; len]));
            } else {
                batch
                    .push_with(to, len, |d| {
                        d.fill(i);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
            }
        }
        let flushed = batch.flush(&sender, |_, _| unreachable!("no TCP datagram queued"));
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
    fn datagrams_for_tcp_clients_go_to_the_caller_in_order_and_the_rest_to_the_socket() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp_client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut batch = SendBatch::default();
        batch.push(Remote::tcp(tcp_client), Bytes::from_static(b"t1"));
        batch.push(receiver.local_addr().unwrap(), Bytes::from_static(b"u1"));
        batch
            .push_with(Remote::tcp(tcp_client), 2, |d| {
                d.copy_from_slice(b"t2");
                Ok::<_, ()>(())
            })
            .unwrap();
        let mut framed = Vec::new();
        let flushed = batch.flush(&sender, |to, d| framed.push((to, d.to_vec())));
        assert_eq!(framed, vec![(tcp_client, b"t1".to_vec()), (tcp_client, b"t2".to_vec())]);
        assert_eq!(flushed, Flushed { sent: 1, failed: 0, calls: 1 });
        let mut buf = [0u8; 16];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"u1");
        assert!(batch.is_empty());
    }

    #[test]
    fn a_failed_write_queues_nothing() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut batch = SendBatch::default();
        batch
            .push_with(to, 3, |d| {
                d.copy_from_slice(b"one");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            batch.push_with(to, 500, |d| {
                d.fill(7);
                Err("refused")
            }),
            Err("refused")
        );
        batch
            .push_with(to, 3, |d| {
                d.copy_from_slice(b"two");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(batch.queued(), vec![(to, &b"one"[..]), (to, &b"two"[..])]);
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
        let flushed = batch.flush(&sender, |_, _| unreachable!("no TCP datagram queued"));
        assert_eq!((flushed.sent, flushed.failed), (1, 1));
        let mut buf = [0u8; 16];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
    }
}
