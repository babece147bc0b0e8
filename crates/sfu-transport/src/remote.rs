//! A client's address as a shard knows it: where it is, and over which transport it is reached.

use std::net::SocketAddr;

/// How a client's datagrams reach a shard and leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// On the shard's UDP socket.
    Udp,
    /// Framed (RFC 4571) on a TCP connection the client opened to the node's ICE-TCP port.
    Tcp,
}

/// A client's transport address. Over TCP, `addr` is the remote end of the client's
/// connection, which names that connection: no two open connections share it. A UDP client and
/// a TCP one may have the same `addr` (a NAT maps each protocol on its own), so the transport is
/// part of the key wherever remotes are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Remote {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl Remote {
    pub fn udp(addr: SocketAddr) -> Self {
        Self { addr, transport: Transport::Udp }
    }

    pub fn tcp(addr: SocketAddr) -> Self {
        Self { addr, transport: Transport::Tcp }
    }

    /// The remote of a datagram the `rtc` stack reads or writes.
    pub fn of(addr: SocketAddr, protocol: rtc::shared::TransportProtocol) -> Self {
        match protocol {
            rtc::shared::TransportProtocol::TCP => Self::tcp(addr),
            // UDP, and whatever a later stack adds: the shard's socket is UDP.
            _ => Self::udp(addr),
        }
    }

    /// The protocol the `rtc` stack names this transport by.
    pub fn protocol(self) -> rtc::shared::TransportProtocol {
        match self.transport {
            Transport::Udp => rtc::shared::TransportProtocol::UDP,
            Transport::Tcp => rtc::shared::TransportProtocol::TCP,
        }
    }
}

/// Relay peers, the shards' own socket and everything before ICE-TCP are UDP.
impl From<SocketAddr> for Remote {
    fn from(addr: SocketAddr) -> Self {
        Self::udp(addr)
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.transport {
            Transport::Udp => write!(f, "udp:{}", self.addr),
            Transport::Tcp => write!(f, "tcp:{}", self.addr),
        }
    }
}
