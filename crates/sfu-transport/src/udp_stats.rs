//! What the kernel knows about a shard's UDP socket: datagrams it dropped because the socket's
//! receive buffer was full (the first place an overloaded shard sheds load) and how many bytes
//! wait in that buffer. Read from /proc/net/udp and /proc/net/udp6, which list every UDP socket
//! of the network namespace.

/// Drops and queued bytes of the UDP socket bound to `port`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SocketStats {
    pub drops: u64,
    pub queued_bytes: u64,
}

/// The socket bound to local `port`, if the kernel lists one (Linux only).
pub(crate) fn socket_stats(port: u16) -> Option<SocketStats> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| find_port(&table, port))
}

/// Bytes the kernel holds in the receive buffer of socket `fd` (its own accounting, which counts
/// each datagram's buffer overhead too): one `getsockopt`, cheap enough to ask often.
pub(crate) fn receive_backlog(fd: std::os::fd::RawFd) -> Option<usize> {
    // SO_MEMINFO (Linux 4.6+) fills an array whose first entry is the receive memory in use.
    const SO_MEMINFO: libc::c_int = 55;
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of `len` bytes; the kernel writes at most that.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    (rc == 0 && len >= 4).then(|| info[libc::SK_MEMINFO_RMEM_ALLOC as usize] as usize)
}

/// Finds `port` in one table. A line reads
/// `sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref pointer drops`
/// with the address as `HEXIP:HEXPORT` and the queues in hexadecimal bytes.
fn find_port(table: &str, port: u16) -> Option<SocketStats> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit(':').next()?;
        if u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let rx_queue = fields.get(4)?.split(':').nth(1)?;
        Some(SocketStats { drops: fields.last()?.parse().ok()?, queued_bytes: u64::from_str_radix(rx_queue, 16).ok()? })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 0100007F:45A2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123 2 0000000000000000 0
  102: 0100007F:45AA 00000000:0000 07 00000000:0001F400 00:00000000 00000000     0        0 124 2 0000000000000000 8812
";

    #[test]
    fn reads_drops_and_queue_of_the_port() {
        assert_eq!(find_port(TABLE, 0x45AA), Some(SocketStats { drops: 8812, queued_bytes: 128_000 }));
        assert_eq!(find_port(TABLE, 0x45A2), Some(SocketStats { drops: 0, queued_bytes: 0 }));
        assert_eq!(find_port(TABLE, 7), None);
        assert_eq!(find_port("garbage\nnot: a table", 7), None);
    }

    #[test]
    fn finds_a_real_socket() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let stats = socket_stats(socket.local_addr().unwrap().port()).expect("listed in /proc/net/udp");
        assert_eq!(stats.drops, 0);
    }
}
