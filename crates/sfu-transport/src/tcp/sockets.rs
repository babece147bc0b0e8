//! A shard's ICE-TCP connections as state: which are proven, how many there may be, and when each
//! must be closed. Pure: time is an argument, and closing is the caller's (the shell's) job.
//!
//! A connection arrives routed by the ufrag of its first STUN request, but that request is not
//! proven yet: only a Binding success from the connection's ICE agent says the client holds the
//! password (see `shard::demux`). The table sees that success leave ([`TcpSockets::on_frame_out`])
//! and marks the connection authenticated. Until then a connection may send STUN only, is
//! counted against [`MAX_UNAUTHENTICATED`], and is closed [`AUTH_TIMEOUT`] after it was
//! accepted. An authenticated connection is closed after [`IDLE_TIMEOUT`] without a frame.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::CloseReason;

/// Time from accepting a connection until its client must have proven itself (an answered
/// STUN request): a browser sends its first check at once and retries within a second.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Time without a frame after which a proven connection is closed: RFC 7675's consent timeout.
/// Browsers send consent checks every few seconds and RTCP every second.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per shard not proven yet. Each costs a socket and a buffer; past this many, new
/// ones are closed at once.
pub(crate) const MAX_UNAUTHENTICATED: usize = 256;

/// Connections per shard in all: each client uses one per peer connection (a few while ICE
/// tries), and each is a file descriptor.
pub(crate) const MAX_CONNECTIONS: usize = 4096;

struct Entry {
    accepted: Instant,
    authenticated: bool,
    last_heard: Instant,
    /// The deadline this connection is filed under (lazy: frames do not move it; when it
    /// passes, the real one is computed and filed again if later).
    filed: Instant,
}

impl Entry {
    fn deadline(&self) -> Instant {
        if self.authenticated { self.last_heard + IDLE_TIMEOUT } else { self.accepted + AUTH_TIMEOUT }
    }
}

/// Connections by their remote address.
#[derive(Default)]
pub(crate) struct TcpSockets {
    entries: HashMap<SocketAddr, Entry>,
    deadlines: BTreeSet<(Instant, SocketAddr)>,
    unauthenticated: usize,
}

impl TcpSockets {
    /// A connection accepted at `accepted` comes to this shard: refused if a cap is reached.
    /// A connection already known from `remote` is replaced (the old one closed in between,
    /// its close not read yet): the caller closes it first.
    pub fn admit(&mut self, remote: SocketAddr, accepted: Instant) -> Result<(), CloseReason> {
        if self.entries.len() >= MAX_CONNECTIONS {
            return Err(CloseReason::ConnectionCap);
        }
        if self.unauthenticated >= MAX_UNAUTHENTICATED {
            return Err(CloseReason::UnauthenticatedCap);
        }
        let entry = Entry { accepted, authenticated: false, last_heard: accepted, filed: accepted + AUTH_TIMEOUT };
        self.deadlines.insert((entry.filed, remote));
        self.entries.insert(remote, entry);
        self.unauthenticated += 1;
        Ok(())
    }

    /// A frame from `remote` read at `now`: whether it may go on to the shard, or why the
    /// connection is to be closed.
    pub fn on_frame_in(&mut self, remote: SocketAddr, frame: &[u8], now: Instant) -> Result<(), CloseReason> {
        let entry = self.entries.get_mut(&remote).ok_or(CloseReason::Unknown)?;
        if !entry.authenticated && !crate::stun::is_stun(frame) {
            return Err(CloseReason::NotStun);
        }
        entry.last_heard = entry.last_heard.max(now);
        Ok(())
    }

    /// The shard sends `datagram` to `remote`: false if no such connection. A Binding success
    /// proves the connection (its agent answered a request that passed the integrity check).
    pub fn on_frame_out(&mut self, remote: SocketAddr, datagram: &[u8]) -> bool {
        let Some(entry) = self.entries.get_mut(&remote) else { return false };
        if !entry.authenticated && crate::stun::is_binding_success(datagram) {
            entry.authenticated = true;
            self.unauthenticated -= 1;
        }
        true
    }

    pub fn contains(&self, remote: SocketAddr) -> bool {
        self.entries.contains_key(&remote)
    }

    pub fn is_authenticated(&self, remote: SocketAddr) -> bool {
        self.entries.get(&remote).is_some_and(|e| e.authenticated)
    }

    /// Forgets `remote` (closed). Returns whether it was known.
    pub fn remove(&mut self, remote: SocketAddr) -> bool {
        let Some(entry) = self.entries.remove(&remote) else { return false };
        self.deadlines.remove(&(entry.filed, remote));
        if !entry.authenticated {
            self.unauthenticated -= 1;
        }
        true
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Time passed: the connections whose deadline passed, removed, with the reason to close
    /// each.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(SocketAddr, CloseReason)> {
        let mut expired = Vec::new();
        while let Some(&(at, remote)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(entry) = self.entries.get_mut(&remote) else { continue };
            let due = entry.deadline();
            if due > now {
                entry.filed = due;
                self.deadlines.insert((due, remote));
                continue;
            }
            let reason = if entry.authenticated { CloseReason::Idle } else { CloseReason::AuthTimeout };
            self.entries.remove(&remote);
            if reason == CloseReason::AuthTimeout {
                self.unauthenticated -= 1;
            }
            expired.push((remote, reason));
        }
        expired
    }

    /// (not proven yet, proven) connections.
    pub fn counts(&self) -> (usize, usize) {
        (self.unauthenticated, self.entries.len() - self.unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 2, 1], port))
    }

    fn stun(class: [u8; 2]) -> Vec<u8> {
        let mut p = vec![class[0], class[1], 0, 0, 0x21, 0x12, 0xA4, 0x42];
        p.resize(20, 3);
        p
    }

    const REQUEST: [u8; 2] = [0x00, 0x01];
    const SUCCESS: [u8; 2] = [0x01, 0x01];
    const DTLS: &[u8] = &[22, 254, 253, 0, 0];

    #[test]
    fn a_connection_is_proven_only_by_the_success_its_agent_sends() {
        let t0 = Instant::now();
        let mut sockets = TcpSockets::default();
        sockets.admit(remote(1), t0).unwrap();
        assert_eq!(sockets.counts(), (1, 0));
        // Before: STUN only, whatever else it sends closes it.
        assert_eq!(sockets.on_frame_in(remote(1), &stun(REQUEST), t0), Ok(()));
        assert_eq!(sockets.on_frame_in(remote(1), DTLS, t0), Err(CloseReason::NotStun));
        // An error response or a request of our own proves nothing.
        assert!(sockets.on_frame_out(remote(1), &stun([0x01, 0x11])));
        assert!(sockets.on_frame_out(remote(1), &stun(REQUEST)));
        assert!(!sockets.is_authenticated(remote(1)));
        assert!(sockets.on_frame_out(remote(1), &stun(SUCCESS)));
        assert!(sockets.is_authenticated(remote(1)));
        assert_eq!(sockets.counts(), (0, 1));
        assert_eq!(sockets.on_frame_in(remote(1), DTLS, t0), Ok(()));
        assert!(!sockets.on_frame_out(remote(2), &stun(SUCCESS)), "no such connection");
        assert_eq!(sockets.on_frame_in(remote(2), &stun(REQUEST), t0), Err(CloseReason::Unknown));
    }

    #[test]
    fn an_unproven_connection_times_out_from_its_accept_whatever_it_sends() {
        let t0 = Instant::now();
        let mut sockets = TcpSockets::default();
        sockets.admit(remote(1), t0).unwrap();
        sockets.admit(remote(2), t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(sockets.poll_timeout(), Some(t0 + AUTH_TIMEOUT));
        // Checks that never get an answer (a wrong password) do not keep it open.
        for s in 1..5 {
            sockets.on_frame_in(remote(1), &stun(REQUEST), t0 + Duration::from_secs(s)).unwrap();
        }
        assert!(sockets.handle_timeout(t0 + AUTH_TIMEOUT - Duration::from_millis(1)).is_empty());
        assert_eq!(sockets.handle_timeout(t0 + AUTH_TIMEOUT), vec![(remote(1), CloseReason::AuthTimeout)]);
        assert_eq!(sockets.poll_timeout(), Some(t0 + Duration::from_secs(1) + AUTH_TIMEOUT));
        assert_eq!(sockets.handle_timeout(t0 + Duration::from_secs(60)), vec![(remote(2), CloseReason::AuthTimeout)]);
        assert_eq!(sockets.counts(), (0, 0));
        assert_eq!(sockets.poll_timeout(), None);
    }

    #[test]
    fn a_proven_connection_lives_while_it_is_heard_from() {
        let t0 = Instant::now();
        let mut sockets = TcpSockets::default();
        sockets.admit(remote(1), t0).unwrap();
        sockets.on_frame_out(remote(1), &stun(SUCCESS));
        // Heard every 10 s for a minute: the lazily filed deadline moves on each time it passes.
        let mut now = t0;
        for _ in 0..6 {
            now += Duration::from_secs(10);
            sockets.on_frame_in(remote(1), DTLS, now).unwrap();
            assert!(sockets.handle_timeout(now).is_empty());
        }
        assert!(sockets.poll_timeout().unwrap() <= now + IDLE_TIMEOUT);
        assert!(sockets.handle_timeout(now + IDLE_TIMEOUT - Duration::from_millis(1)).is_empty());
        assert_eq!(sockets.handle_timeout(now + IDLE_TIMEOUT), vec![(remote(1), CloseReason::Idle)]);
        assert!(!sockets.contains(remote(1)));
    }

    #[test]
    fn unproven_connections_are_capped_and_a_proven_one_frees_its_place() {
        let t0 = Instant::now();
        let mut sockets = TcpSockets::default();
        for port in 0..MAX_UNAUTHENTICATED as u16 {
            sockets.admit(remote(port), t0).unwrap();
        }
        let next = remote(MAX_UNAUTHENTICATED as u16);
        assert_eq!(sockets.admit(next, t0), Err(CloseReason::UnauthenticatedCap));
        sockets.on_frame_out(remote(0), &stun(SUCCESS));
        assert_eq!(sockets.admit(next, t0), Ok(()));
        assert_eq!(sockets.admit(remote(9999), t0), Err(CloseReason::UnauthenticatedCap));
        // Closing one frees a place too, and forgets its deadline.
        assert!(sockets.remove(remote(1)));
        assert!(!sockets.remove(remote(1)));
        assert_eq!(sockets.admit(remote(9999), t0), Ok(()));
        assert_eq!(sockets.counts(), (MAX_UNAUTHENTICATED, 1));
        let expired = sockets.handle_timeout(t0 + AUTH_TIMEOUT);
        assert_eq!(expired.len(), MAX_UNAUTHENTICATED);
        assert!(expired.iter().all(|(_, reason)| *reason == CloseReason::AuthTimeout));
        assert_eq!(sockets.counts(), (0, 1));
    }

    #[test]
    fn connections_in_all_are_capped() {
        let t0 = Instant::now();
        let mut sockets = TcpSockets::default();
        for port in 0..MAX_CONNECTIONS as u16 {
            sockets.admit(remote(port), t0).unwrap();
            sockets.on_frame_out(remote(port), &stun(SUCCESS));
        }
        assert_eq!(sockets.admit(remote(60000), t0), Err(CloseReason::ConnectionCap));
    }
}
