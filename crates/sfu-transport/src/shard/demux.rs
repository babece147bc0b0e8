//! Which connection a datagram on the shard socket belongs to.
//!
//! A connection is found by the remote addresses ICE has validated for it, and, for STUN from
//! an address not validated yet, by the ICE ufrag its USERNAME names. A datagram routed by ufrag
//! is only a candidate: it goes to the connection's ICE agent, which checks MESSAGE-INTEGRITY,
//! and the address joins the connection only when the agent answers it with a Binding success
//! (RFC 8445 section 7.3: a request that fails the check gets no success). Until then the
//! address routes nothing else, so unauthenticated STUN from anywhere cannot take a connection's
//! media (RFC 7675 consent: media flows only to and from a peer that proved it holds the
//! password).
//!
//! The agent also sends checks of its own to an address it has not validated yet (a triggered
//! check, RFC 8445 section 7.3.1.4), and a response carries no USERNAME: a STUN response from
//! that address with the transaction id of such a check is routed to the agent too. Firefox
//! depends on it: towards an ICE-lite server it nominates on its first check, and the agent
//! answers that only once its own check of the pair has succeeded.
//!
//! A client with several interfaces (Wi-Fi and Ethernet, a VPN, a container bridge) sends checks
//! from each, so a connection holds several validated addresses at once, and media from any of
//! them is accepted. Where media is *sent* is not decided here: it follows the pair the ICE
//! agent selected on nomination.
//!
//! Addresses are [`Remote`]s: a client reached over ICE-TCP is known by its connection's remote
//! end and the TCP transport, and follows the same rules. Its connection closing forgets it
//! ([`Demux::forget`]): a later connection from the same address proves itself again.

use std::collections::HashMap;

use crate::ConnId;
use crate::remote::Remote;

/// Validated addresses kept per connection. A laptop with a few interfaces and both IP
/// families fits; past it the address validated longest ago is forgotten (a client's checks
/// from it would validate it again).
pub(crate) const MAX_PATHS_PER_CONN: usize = 8;

/// Checks sent to unvalidated addresses whose responses are awaited, per shard. A check is
/// answered within a round trip; past this many the oldest is forgotten.
pub(crate) const MAX_PENDING_CHECKS: usize = 1024;

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// From an address validated for this connection: anything may be read.
    Validated(ConnId),
    /// STUN naming this connection's ufrag, or answering its agent's check, from an address not
    /// validated for it: only its ICE agent may see it.
    Unvalidated(ConnId),
    /// Nobody's.
    Unroutable,
}

#[derive(Default)]
struct Paths {
    ufrag: String,
    /// Oldest validation first.
    addrs: Vec<Remote>,
}

/// The shard's demultiplexer: ufrags and validated addresses to connections.
#[derive(Default)]
pub(crate) struct Demux {
    by_ufrag: HashMap<String, ConnId>,
    by_addr: HashMap<Remote, ConnId>,
    conns: HashMap<ConnId, Paths>,
    /// Transaction id of a check sent to an unvalidated address -> (connection, address).
    pending_checks: HashMap<[u8; 12], (ConnId, Remote)>,
    /// The same ids, oldest first, to bound the map.
    pending_order: std::collections::VecDeque<[u8; 12]>,
    /// How often each bound made it forget something (read into /metrics by the shard).
    limits_hit: LimitsHit,
}

/// Times the demultiplexer's bounds were reached since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LimitsHit {
    /// A connection validated a ninth address, and its oldest was forgotten.
    pub paths: u64,
    /// A check's transaction was forgotten before its response came.
    pub pending_checks: u64,
}

impl Demux {
    /// The connection `datagram` from `from` belongs to.
    pub fn route(&self, datagram: &[u8], from: Remote) -> Route {
        if let Some(id) = self.by_addr.get(&from) {
            return Route::Validated(*id);
        }
        if let Some(id) = crate::stun::local_ufrag(datagram).and_then(|u| self.by_ufrag.get(u)) {
            return Route::Unvalidated(*id);
        }
        match transaction_id(datagram).filter(|_| is_response(datagram)).and_then(|t| self.pending_checks.get(&t)) {
            Some((id, to)) if *to == from => Route::Unvalidated(*id),
            _ => Route::Unroutable,
        }
    }

    /// The agent of `id` sent `datagram` to `to`: if it is a check of an address not validated
    /// yet, its response is routed back to `id`.
    /// A connection it does not know (removed) leaves nothing: its response would be nobody's.
    pub fn on_sent(&mut self, id: ConnId, to: Remote, datagram: &[u8]) {
        if self.by_addr.get(&to) == Some(&id) || !is_request(datagram) || !self.conns.contains_key(&id) {
            return;
        }
        let Some(transaction) = transaction_id(datagram) else { return };
        if self.pending_checks.insert(transaction, (id, to)).is_none() {
            self.pending_order.push_back(transaction);
        }
        while self.pending_order.len() > MAX_PENDING_CHECKS {
            if let Some(oldest) = self.pending_order.pop_front() {
                self.pending_checks.remove(&oldest);
                self.limits_hit.pending_checks += 1;
            }
        }
    }

    /// STUN naming `ufrag` (our side's) is routed to `id`; an ICE restart replaces the old one.
    pub fn set_ufrag(&mut self, id: ConnId, ufrag: &str) {
        let paths = self.conns.entry(id).or_default();
        if paths.ufrag == ufrag {
            return;
        }
        if !paths.ufrag.is_empty() {
            self.by_ufrag.remove(&paths.ufrag);
        }
        paths.ufrag = ufrag.to_owned();
        self.by_ufrag.insert(ufrag.to_owned(), id);
    }

    /// ICE answered a check from `addr` for `id`: datagrams from it are `id`'s. Returns whether
    /// the address is new to the connection.
    pub fn validate(&mut self, id: ConnId, addr: Remote) -> bool {
        let Some(paths) = self.conns.get_mut(&id) else { return false };
        if paths.addrs.contains(&addr) {
            return false;
        }
        // Another connection's address now (a port reused by a new client): it moves here.
        if let Some(previous) = self.by_addr.insert(addr, id)
            && let Some(other) = self.conns.get_mut(&previous)
        {
            other.addrs.retain(|a| *a != addr);
        }
        let Some(paths) = self.conns.get_mut(&id) else { return false };
        if paths.addrs.len() >= MAX_PATHS_PER_CONN {
            let oldest = paths.addrs.remove(0);
            self.by_addr.remove(&oldest);
            self.limits_hit.paths += 1;
        }
        paths.addrs.push(addr);
        true
    }

    /// How often the bounds were reached since the start.
    pub fn limits_hit(&self) -> LimitsHit {
        self.limits_hit
    }

    /// The addresses validated for `id`, oldest first.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn addrs(&self, id: ConnId) -> &[Remote] {
        self.conns.get(&id).map_or(&[], |p| &p.addrs)
    }

    /// `remote` is gone (a client's TCP connection closed): nothing from it is routed any more,
    /// and responses awaited from it are not.
    pub fn forget(&mut self, remote: Remote) {
        self.pending_checks.retain(|_, (_, to)| *to != remote);
        let Some(id) = self.by_addr.remove(&remote) else { return };
        if let Some(paths) = self.conns.get_mut(&id) {
            paths.addrs.retain(|a| *a != remote);
        }
    }

    /// Forgets everything routed to `id`.
    pub fn remove(&mut self, id: ConnId) {
        self.pending_checks.retain(|_, (conn, _)| *conn != id);
        let Some(paths) = self.conns.remove(&id) else { return };
        if self.by_ufrag.get(&paths.ufrag) == Some(&id) {
            self.by_ufrag.remove(&paths.ufrag);
        }
        for addr in paths.addrs {
            if self.by_addr.get(&addr) == Some(&id) {
                self.by_addr.remove(&addr);
            }
        }
    }
}

/// A STUN Binding request.
fn is_request(datagram: &[u8]) -> bool {
    crate::stun::is_stun(datagram) && datagram[0] == 0x00 && datagram[1] == 0x01
}

/// A STUN Binding response, success (0x0101) or error (0x0111).
fn is_response(datagram: &[u8]) -> bool {
    crate::stun::is_stun(datagram) && datagram[0] == 0x01 && (datagram[1] == 0x01 || datagram[1] == 0x11)
}

fn transaction_id(datagram: &[u8]) -> Option<[u8; 12]> {
    datagram.get(8..20)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::is_binding_success;

    fn check(ufrag: &str) -> Vec<u8> {
        let username = format!("{ufrag}:client");
        let padded = username.len().div_ceil(4) * 4;
        let mut p = vec![0x00, 0x01];
        p.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        p.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        p.extend_from_slice(&[1; 12]);
        p.extend_from_slice(&[0x00, 0x06]);
        p.extend_from_slice(&(username.len() as u16).to_be_bytes());
        p.extend_from_slice(username.as_bytes());
        p.resize(20 + 4 + padded, 0);
        p
    }

    fn addr(port: u16) -> Remote {
        Remote::udp(std::net::SocketAddr::from(([10, 0, 0, 1], port)))
    }

    fn tcp(port: u16) -> Remote {
        Remote::tcp(addr(port).addr)
    }

    const MEDIA: &[u8] = &[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn stun_from_a_new_address_reaches_ice_but_routes_nothing_else() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "srv1");
        demux.validate(ConnId(1), addr(1000));
        // A forged check from elsewhere: only the ICE agent sees it.
        assert_eq!(demux.route(&check("srv1"), addr(6666)), Route::Unvalidated(ConnId(1)));
        assert_eq!(demux.route(MEDIA, addr(6666)), Route::Unroutable);
        // The real path is untouched.
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Validated(ConnId(1)));
        assert_eq!(demux.route(&check("other"), addr(7777)), Route::Unroutable);
    }

    #[test]
    fn every_validated_address_of_a_multihomed_client_routes_to_it() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "srv1");
        for port in [1000, 1001, 1002] {
            assert!(demux.validate(ConnId(1), addr(port)));
        }
        assert!(!demux.validate(ConnId(1), addr(1001)), "already known");
        for port in [1000, 1001, 1002] {
            assert_eq!(demux.route(MEDIA, addr(port)), Route::Validated(ConnId(1)));
        }
        assert_eq!(demux.addrs(ConnId(1)), &[addr(1000), addr(1001), addr(1002)]);
    }

    #[test]
    fn addresses_per_connection_are_bounded_oldest_forgotten() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "srv1");
        for port in 0..(MAX_PATHS_PER_CONN as u16 + 3) {
            demux.validate(ConnId(1), addr(2000 + port));
        }
        assert_eq!(demux.addrs(ConnId(1)).len(), MAX_PATHS_PER_CONN);
        assert_eq!(demux.route(MEDIA, addr(2000)), Route::Unroutable);
        assert_eq!(demux.route(MEDIA, addr(2002)), Route::Unroutable);
        assert_eq!(demux.route(MEDIA, addr(2003)), Route::Validated(ConnId(1)));
        assert_eq!(demux.by_addr.len(), MAX_PATHS_PER_CONN);
        assert_eq!(demux.limits_hit().paths, 3);
    }

    #[test]
    fn an_address_validated_by_another_connection_moves_to_it() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "a");
        demux.set_ufrag(ConnId(2), "b");
        demux.validate(ConnId(1), addr(1000));
        demux.validate(ConnId(2), addr(1000));
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Validated(ConnId(2)));
        assert!(demux.addrs(ConnId(1)).is_empty());
        demux.remove(ConnId(1));
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Validated(ConnId(2)), "removing 1 leaves 2's address");
    }

    #[test]
    fn an_ice_restart_replaces_the_ufrag_and_removal_forgets_everything() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "old");
        demux.validate(ConnId(1), addr(1000));
        demux.set_ufrag(ConnId(1), "new");
        assert_eq!(demux.route(&check("old"), addr(9)), Route::Unroutable);
        assert_eq!(demux.route(&check("new"), addr(9)), Route::Unvalidated(ConnId(1)));
        demux.remove(ConnId(1));
        assert_eq!(demux.route(&check("new"), addr(9)), Route::Unroutable);
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Unroutable);
        assert!(demux.conns.is_empty() && demux.by_addr.is_empty() && demux.by_ufrag.is_empty());
    }

    #[test]
    fn a_tcp_client_is_told_from_a_udp_one_at_the_same_address_and_forgotten_when_it_closes() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "udp1");
        demux.set_ufrag(ConnId(2), "tcp2");
        demux.validate(ConnId(1), addr(1000));
        // The same IP and port, over TCP: not the UDP client's path.
        assert_eq!(demux.route(MEDIA, tcp(1000)), Route::Unroutable);
        assert_eq!(demux.route(&check("tcp2"), tcp(1000)), Route::Unvalidated(ConnId(2)));
        assert!(demux.validate(ConnId(2), tcp(1000)));
        assert_eq!(demux.route(MEDIA, tcp(1000)), Route::Validated(ConnId(2)));
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Validated(ConnId(1)));
        // Our check of the TCP path is awaited from it, then the connection closes.
        let mut our_check = check("client");
        our_check[8..20].copy_from_slice(&[4; 12]);
        demux.validate(ConnId(2), tcp(1001));
        demux.forget(tcp(1001));
        demux.on_sent(ConnId(2), tcp(1002), &our_check);
        demux.forget(tcp(1002));
        assert_eq!(demux.route(&response_to(&our_check), tcp(1002)), Route::Unroutable);
        demux.forget(tcp(1000));
        assert_eq!(demux.route(MEDIA, tcp(1000)), Route::Unroutable);
        assert!(demux.addrs(ConnId(2)).is_empty());
        assert_eq!(demux.route(MEDIA, addr(1000)), Route::Validated(ConnId(1)), "the UDP client keeps its path");
        demux.forget(tcp(1000));
    }

    fn response_to(request: &[u8]) -> Vec<u8> {
        let mut response = request[..20].to_vec();
        response[0] = 0x01;
        response[1] = 0x01;
        response[2] = 0;
        response[3] = 0;
        response
    }

    #[test]
    fn the_response_to_our_own_check_of_a_new_address_reaches_ice() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "srv1");
        let mut our_check = check("client");
        our_check[8..20].copy_from_slice(&[9; 12]);
        demux.on_sent(ConnId(1), addr(3000), &our_check);
        let response = response_to(&our_check);
        // From elsewhere, or answering another transaction: nobody's.
        assert_eq!(demux.route(&response, addr(3001)), Route::Unroutable);
        let mut other = response.clone();
        other[19] ^= 1;
        assert_eq!(demux.route(&other, addr(3000)), Route::Unroutable);
        assert_eq!(demux.route(&response, addr(3000)), Route::Unvalidated(ConnId(1)));
        // Still nothing but STUN from there until the agent answers a check from it.
        assert_eq!(demux.route(MEDIA, addr(3000)), Route::Unroutable);
        demux.remove(ConnId(1));
        assert_eq!(demux.route(&response, addr(3000)), Route::Unroutable);
    }

    #[test]
    fn awaited_responses_are_bounded() {
        let mut demux = Demux::default();
        demux.set_ufrag(ConnId(1), "srv1");
        let mut request = check("client");
        for i in 0..(MAX_PENDING_CHECKS as u32 + 10) {
            request[8..12].copy_from_slice(&i.to_be_bytes());
            demux.on_sent(ConnId(1), addr(3000), &request);
        }
        assert_eq!(demux.pending_checks.len(), MAX_PENDING_CHECKS);
        assert_eq!(demux.pending_order.len(), MAX_PENDING_CHECKS);
        assert_eq!(demux.limits_hit().pending_checks, 10);
        request[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(demux.route(&response_to(&request), addr(3000)), Route::Unroutable, "the oldest was forgotten");
        // Responses and media written by the agent are not awaited.
        demux.on_sent(ConnId(1), addr(4000), MEDIA);
        assert_eq!(demux.pending_checks.len(), MAX_PENDING_CHECKS);
    }

    #[test]
    fn binding_success_is_told_from_requests_and_media() {
        let mut success = check("x");
        success[0] = 0x01;
        success[1] = 0x01;
        assert!(is_binding_success(&success));
        assert!(!is_binding_success(&check("x")));
        assert!(!is_binding_success(MEDIA));
        let mut error = success.clone();
        error[1] = 0x11;
        assert!(!is_binding_success(&error));
    }
}
