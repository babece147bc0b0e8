//! One client's allocation: its relay address, lifetime, permissions and channels, each bounded
//! in number and expiring by itself (RFC 8656 sections 9 and 12).

use rtc_stun::message::TransactionId;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::ClientAddr;

/// A permission lasts 300 s unless refreshed (RFC 8656 section 9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// A channel binding lasts 600 s unless refreshed (RFC 8656 section 12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// The allocation's Allocate, answered once its relay socket is open.
#[derive(Debug)]
pub struct PendingAllocate {
    pub reply: crate::wire::ReplyTo,
    pub lifetime: Duration,
}

#[derive(Debug)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    expires: Instant,
}

/// Why a channel cannot be bound.
#[derive(Debug, PartialEq, Eq)]
pub enum BindRefusal {
    /// The number is bound to another peer, or the peer to another number (400).
    Conflict,
    /// The allocation has as many channels as it may (508).
    Full,
}

#[derive(Debug)]
pub struct Allocation {
    pub client: ClientAddr,
    /// The REST username that made it; later requests must present the same one (441).
    pub username: String,
    /// That username's long-term key: signs every response on this allocation.
    pub key: Vec<u8>,
    /// The relayed transport address clients see, once the relay socket is open.
    pub relayed: Option<SocketAddr>,
    /// Filed in the core's deadline set under this instant.
    pub expires: Instant,
    pub pending: Option<PendingAllocate>,
    /// The success response to the Allocate, sent again for a retransmission of it.
    pub answered: Option<(TransactionId, Vec<u8>)>,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<Channel>,
}

impl Allocation {
    pub fn new(client: ClientAddr, username: String, key: Vec<u8>, expires: Instant, pending: PendingAllocate) -> Self {
        Allocation {
            client,
            username,
            key,
            relayed: None,
            expires,
            pending: Some(pending),
            answered: None,
            permissions: Vec::new(),
            channels: Vec::new(),
        }
    }

    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.iter().any(|(p, until)| *p == ip && *until > now)
    }

    /// Installs or refreshes a permission for `ip`; false when `max` live ones exist already.
    pub fn permit(&mut self, ip: IpAddr, now: Instant, max: usize) -> bool {
        self.permissions.retain(|(_, until)| *until > now);
        if let Some(p) = self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            p.1 = now + PERMISSION_LIFETIME;
            return true;
        }
        if self.permissions.len() >= max {
            return false;
        }
        self.permissions.push((ip, now + PERMISSION_LIFETIME));
        true
    }

    /// Whether `permit` would succeed for each of `ips` (checked before any is installed, so a
    /// refused request changes nothing).
    pub fn can_permit(&self, ips: &[IpAddr], now: Instant, max: usize) -> bool {
        let live: Vec<IpAddr> = self.permissions.iter().filter(|(_, u)| *u > now).map(|(p, _)| *p).collect();
        let mut new: Vec<IpAddr> = ips.iter().copied().filter(|ip| !live.contains(ip)).collect();
        new.sort();
        new.dedup();
        live.len() + new.len() <= max
    }

    /// The peer bound to channel `number`, if the binding is live.
    pub fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels.iter().find(|c| c.number == number && c.expires > now).map(|c| c.peer)
    }

    /// The channel bound to `peer`, if the binding is live.
    pub fn channel_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels.iter().find(|c| c.peer == peer && c.expires > now).map(|c| c.number)
    }

    /// Binds (or refreshes) channel `number` to `peer`, with its permission.
    pub fn bind_channel(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
        max_channels: usize,
        max_permissions: usize,
    ) -> Result<(), BindRefusal> {
        // An expired binding keeps its number and peer for 5 more minutes (RFC 8656 section
        // 12): only then may either be bound otherwise.
        let reserved = |c: &Channel| c.expires + PERMISSION_LIFETIME > now;
        self.channels.retain(reserved);
        let found = self.channels.iter().position(|c| c.number == number || c.peer == peer);
        match found {
            Some(i) if self.channels[i].number != number || self.channels[i].peer != peer => {
                return Err(BindRefusal::Conflict);
            }
            None if self.channels.len() >= max_channels => return Err(BindRefusal::Full),
            _ => {}
        }
        if !self.can_permit(&[peer.ip()], now, max_permissions) {
            return Err(BindRefusal::Full);
        }
        match found {
            Some(i) => self.channels[i].expires = now + CHANNEL_LIFETIME,
            None => self.channels.push(Channel { number, peer, expires: now + CHANNEL_LIFETIME }),
        }
        self.permit(peer.ip(), now, max_permissions);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Transport;
    use rtc_stun::message::METHOD_ALLOCATE;

    fn allocation(now: Instant) -> Allocation {
        let client = ClientAddr { transport: Transport::Udp, addr: "127.0.0.1:5000".parse().unwrap() };
        let reply = crate::wire::ReplyTo {
            method: METHOD_ALLOCATE,
            transaction_id: TransactionId([1; 12]),
            fingerprint: false,
        };
        Allocation::new(
            client,
            "u".into(),
            vec![0; 16],
            now,
            PendingAllocate { reply, lifetime: Duration::from_secs(600) },
        )
    }

    #[test]
    fn permissions_expire_and_are_bounded() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(a.permit(ip(1), t0, 2));
        assert!(a.permit(ip(2), t0, 2));
        assert!(!a.permit(ip(3), t0, 2));
        assert!(a.permit(ip(1), t0 + Duration::from_secs(100), 2), "a refresh is not a new one");
        assert!(a.has_permission(ip(2), t0 + Duration::from_secs(299)));
        assert!(!a.has_permission(ip(2), t0 + PERMISSION_LIFETIME));
        assert!(a.has_permission(ip(1), t0 + PERMISSION_LIFETIME));
        // ip(2) expired: its place is free again.
        assert!(a.permit(ip(3), t0 + PERMISSION_LIFETIME, 2));
    }

    #[test]
    fn channels_conflict_expire_and_are_bounded() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let peer = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        assert_eq!(a.bind_channel(0x4000, peer(1), t0, 2, 8), Ok(()));
        assert_eq!(a.bind_channel(0x4000, peer(1), t0, 2, 8), Ok(()), "a refresh");
        assert_eq!(a.bind_channel(0x4000, peer(2), t0, 2, 8), Err(BindRefusal::Conflict));
        assert_eq!(a.bind_channel(0x4001, peer(1), t0, 2, 8), Err(BindRefusal::Conflict));
        assert_eq!(a.bind_channel(0x4001, peer(2), t0, 2, 8), Ok(()));
        assert_eq!(a.bind_channel(0x4002, peer(3), t0, 2, 8), Err(BindRefusal::Full));
        assert_eq!(a.channel_peer(0x4001, t0), Some(peer(2)));
        assert_eq!(a.channel_of(peer(1), t0), Some(0x4000));
        assert!(a.has_permission(peer(1).ip(), t0));
        let later = t0 + CHANNEL_LIFETIME;
        assert_eq!(a.channel_peer(0x4000, later), None);
        // Still reserved for 5 minutes after it lapsed, then free.
        assert_eq!(a.bind_channel(0x4000, peer(3), later, 2, 8), Err(BindRefusal::Conflict));
        let free = later + PERMISSION_LIFETIME;
        assert_eq!(a.bind_channel(0x4000, peer(3), free, 2, 8), Ok(()));
    }
}
