//! Reading a socket's queued datagrams with one system call (`recvmmsg`), each with the time the
//! kernel received it (`SO_TIMESTAMPNS`).
//!
//! The kernel's time is what a subscriber's transport-cc feedback and latency figures need: the
//! moment the packet arrived, not the moment a busy worker got round to reading it. Otherwise the
//! harness's own queueing shows up in the server's delay-based bandwidth estimate as congestion
//! and in the latency as the server's delay.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant, SystemTime};

/// Datagrams read per call. A subscriber's socket rarely holds more than a few.
pub const MAX_PER_CALL: usize = 8;
/// Larger than any datagram the server sends (it keeps under a 1500-byte MTU).
const BUF_LEN: usize = 2048;
/// A kernel time further back than this is not believed (the clock was stepped).
const MAX_AGE: Duration = Duration::from_secs(5);

pub struct RecvBatch {
    bufs: Box<[[u8; BUF_LEN]; MAX_PER_CALL]>,
    got: [(usize, Option<SocketAddr>, Instant); MAX_PER_CALL],
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self { bufs: Box::new([[0; BUF_LEN]; MAX_PER_CALL]), got: [(0, None, Instant::now()); MAX_PER_CALL] }
    }
}

/// Asks the kernel to stamp each datagram `fd` receives.
#[cfg(target_os = "linux")]
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and an int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
pub fn enable_timestamps(_fd: RawFd) -> io::Result<()> {
    Ok(())
}

impl RecvBatch {
    /// Datagram `i` of the last [`recv`](Self::recv): bytes, sender, arrival.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr, Instant)> {
        let (len, from, at) = *self.got.get(i)?;
        Some((&self.bufs[i][..len], from?, at))
    }

    /// Reads up to [`MAX_PER_CALL`] datagrams from the non-blocking socket `fd`; returns how
    /// many (0 when none is queued). Fewer than the maximum means the queue was drained.
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: sockaddr_storage is a plain C struct for which all-zero is valid.
        let mut names: [libc::sockaddr_storage; MAX_PER_CALL] = unsafe { std::mem::zeroed() };
        let mut controls = [[0u64; 8]; MAX_PER_CALL];
        // SAFETY: iovec is a plain C struct (a null pointer and a length) for which all-zero is valid.
        let mut iovecs: [libc::iovec; MAX_PER_CALL] = unsafe { std::mem::zeroed() };
        // SAFETY: mmsghdr is a plain C struct of pointers and lengths for which all-zero is valid.
        let mut headers: [libc::mmsghdr; MAX_PER_CALL] = unsafe { std::mem::zeroed() };
        for i in 0..MAX_PER_CALL {
            iovecs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr() as *mut libc::c_void, iov_len: BUF_LEN };
            let h = &mut headers[i].msg_hdr;
            h.msg_name = &mut names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = controls[i].as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = std::mem::size_of_val(&controls[i]) as _;
        }
        let count = loop {
            // SAFETY: every header points at a name, an iovec and a control buffer that live
            // until the call returns, and each iovec at a buffer of BUF_LEN bytes.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    MAX_PER_CALL as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(error),
            }
        };
        let (mono, real) = (Instant::now(), SystemTime::now());
        for i in 0..count {
            let header = &headers[i].msg_hdr;
            let at = kernel_time(header)
                .and_then(|t| real.duration_since(t).ok())
                .filter(|age| *age <= MAX_AGE)
                .and_then(|age| mono.checked_sub(age))
                .unwrap_or(mono);
            let len = (headers[i].msg_len as usize).min(BUF_LEN);
            self.got[i] = (len, socket_addr(&names[i]), at);
        }
        Ok(count)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        use std::os::fd::BorrowedFd;
        // SAFETY: the fd belongs to the caller's socket, which outlives this call.
        let socket = std::net::UdpSocket::from(unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?);
        let mut count = 0;
        while count < MAX_PER_CALL {
            match socket.recv_from(&mut self.bufs[count]) {
                Ok((len, from)) => {
                    self.got[count] = (len, Some(from), Instant::now());
                    count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if count == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(count)
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received datagram, as wall-clock time.
#[cfg(target_os = "linux")]
fn kernel_time(header: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the kernel filled the control buffer and set msg_controllen; the CMSG macros
    // walk only within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                return SystemTime::UNIX_EPOCH.checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

#[cfg(target_os = "linux")]
fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let v4 = unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let v6 = unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(v6.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_queued_datagrams_in_one_call_with_their_arrival() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        enable_timestamps(receiver.as_raw_fd()).unwrap();
        // The first socket to ask for timestamps turns the kernel's stamping on from a work
        // queue, a moment later; until then datagrams are stamped when read.
        std::thread::sleep(Duration::from_millis(200));
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::default();
        assert_eq!(batch.recv(receiver.as_raw_fd()).unwrap(), 0, "nothing queued yet");

        let before = Instant::now();
        for i in 0..3u8 {
            sender.send_to(&[i; 10], receiver.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let after = Instant::now();
        assert_eq!(batch.recv(receiver.as_raw_fd()).unwrap(), 3);
        for i in 0..3u8 {
            let (bytes, from, at) = batch.get(usize::from(i)).unwrap();
            assert_eq!(bytes, &[i; 10]);
            assert_eq!(from, sender.local_addr().unwrap());
            // Stamped on arrival, not when read 50 ms later (with a millisecond for the
            // conversion between clocks).
            assert!(
                at + Duration::from_millis(1) >= before && at < after - Duration::from_millis(25),
                "arrival {:?} after the sends began, read {:?} after",
                at.saturating_duration_since(before),
                after.saturating_duration_since(before)
            );
        }
        assert_eq!(batch.recv(receiver.as_raw_fd()).unwrap(), 0);
    }
}
