//! The requests a client makes: Binding, Allocate, Refresh, CreatePermission, ChannelBind.
//! Every request but Binding must be authenticated; requests on an allocation must come from
//! its client with the username that made it.

use rtc_stun::error_code::{
    CODE_ADDR_FAMILY_NOT_SUPPORTED, CODE_ALLOC_MISMATCH, CODE_ALLOC_QUOTA_REACHED, CODE_BAD_REQUEST, CODE_FORBIDDEN,
    CODE_INSUFFICIENT_CAPACITY, CODE_UNSUPPORTED_TRANS_PROTO, CODE_WRONG_CREDENTIALS, ErrorCode,
};
use rtc_stun::message::{Getter, Message};
use rtc_stun::xoraddr::XorMappedAddress;
use rtc_turn::proto::PROTO_UDP;
use rtc_turn::proto::channum::ChannelNumber;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::relayaddr::RelayedAddress;
use rtc_turn::proto::reqtrans::RequestedTransport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::allocation::{Allocation, BindRefusal, PendingAllocate};
use super::auth::Authed;
use super::{AllocId, ClientAddr, Event, TurnCore};
use crate::wire::{self, ReplyTo, Seal};

/// REQUESTED-ADDRESS-FAMILY (RFC 8656 section 18.1) and RESERVATION-TOKEN (section 18.9).
const ATTR_REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
const ATTR_RESERVATION_TOKEN: u16 = 0x0022;
const FAMILY_IPV4: u8 = 0x01;
/// Channel numbers a client may bind (RFC 8656 section 12; RFC 5766 allowed up to 0x7FFF).
const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;

impl TurnCore {
    /// Binding: the client's address as seen here, no credentials needed (a STUN server too).
    pub(super) fn binding(&mut self, client: ClientAddr, m: &Message) {
        let mapped = XorMappedAddress { ip: client.addr.ip(), port: client.addr.port() };
        let seal = Seal { key: None, crypto: self.crypto.crypto() };
        let response = wire::success(ReplyTo::new(m), vec![Box::new(mapped)], seal);
        self.send_to_client(client, response);
    }

    pub(super) fn unknown_request(&mut self, client: ClientAddr, m: &Message) {
        let seal = Seal { key: None, crypto: self.crypto.crypto() };
        let response = wire::error(ReplyTo::new(m), CODE_BAD_REQUEST, Vec::new(), seal);
        self.send_to_client(client, response);
    }

    /// Authenticates `m`, answering it when that fails.
    fn authenticated(&mut self, now: Instant, client: ClientAddr, m: &mut Message) -> Option<Authed> {
        match self.authenticate(now, client, m) {
            Ok(authed) => Some(authed),
            Err(refusal) => {
                self.refuse(now, client, ReplyTo::new(m), refusal);
                None
            }
        }
    }

    /// An error response signed with `key`.
    fn fail(&mut self, client: ClientAddr, to: ReplyTo, code: ErrorCode, key: &[u8]) {
        let response = wire::error(to, code, Vec::new(), Seal { key: Some(key), crypto: self.crypto.crypto() });
        self.send_to_client(client, response);
    }

    pub(super) fn allocate(&mut self, now: Instant, client: ClientAddr, mut m: Message) {
        let to = ReplyTo::new(&m);
        let Some(authed) = self.authenticated(now, client, &mut m) else { return };
        if let Some(a) = self.by_client.get(&client).and_then(|id| self.allocations.get(id)) {
            match &a.answered {
                // A retransmission of the Allocate that made it: the same answer again.
                Some((tid, response)) if *tid == to.transaction_id => {
                    let response = response.clone();
                    self.send_to_client(client, Some(response));
                }
                // Still opening its socket: the answer is on its way.
                None if a.pending.as_ref().is_some_and(|p| p.reply.transaction_id == to.transaction_id) => {}
                _ => self.fail(client, to, CODE_ALLOC_MISMATCH, &authed.key),
            }
            return;
        }
        let mut transport = RequestedTransport::default();
        if transport.get_from(&m).is_err() {
            return self.fail(client, to, CODE_BAD_REQUEST, &authed.key);
        }
        if transport.protocol != PROTO_UDP {
            return self.fail(client, to, CODE_UNSUPPORTED_TRANS_PROTO, &authed.key);
        }
        let family = m.get(rtc_stun::attributes::AttrType(ATTR_REQUESTED_ADDRESS_FAMILY)).ok();
        if family.is_some_and(|f| f.first() != Some(&FAMILY_IPV4)) || !self.config.relay_ip.is_ipv4() {
            return self.fail(client, to, CODE_ADDR_FAMILY_NOT_SUPPORTED, &authed.key);
        }
        // No port is ever reserved here, so a token cannot name one.
        if m.contains(rtc_stun::attributes::AttrType(ATTR_RESERVATION_TOKEN)) {
            return self.fail(client, to, CODE_INSUFFICIENT_CAPACITY, &authed.key);
        }
        let ip = client.addr.ip();
        if self.allocations.len() >= self.config.limits.max_allocations {
            self.stats.quota_refusals += 1;
            return self.fail(client, to, CODE_INSUFFICIENT_CAPACITY, &authed.key);
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.limits.max_allocations_per_ip {
            self.stats.quota_refusals += 1;
            return self.fail(client, to, CODE_ALLOC_QUOTA_REACHED, &authed.key);
        }
        let lifetime = self.lifetime(&m);
        let id = AllocId(self.next_id);
        self.next_id += 1;
        let expires = now + self.config.limits.open_timeout;
        let pending = PendingAllocate { reply: to, lifetime };
        self.allocations.insert(id, Allocation::new(client, authed.username, authed.key, expires, pending));
        self.deadlines.insert((expires, id));
        self.by_client.insert(client, id);
        *self.per_ip.entry(ip).or_default() += 1;
        self.stats.allocations = self.allocations.len() as u64;
        self.events.push_back(Event::OpenRelay(id));
    }

    /// The relay socket the shell opened for `id` (bound to `local`), or could not open.
    pub fn handle_relay_opened(&mut self, now: Instant, id: AllocId, local: Result<SocketAddr, ()>) {
        let Some(a) = self.allocations.get_mut(&id) else {
            // Gone meanwhile (its connection closed): the socket is not wanted.
            self.events.push_back(Event::CloseRelay(id));
            return;
        };
        let Some(pending) = a.pending.take() else { return };
        let (client, key) = (a.client, a.key.clone());
        let Ok(local) = local else {
            self.fail(client, pending.reply, CODE_INSUFFICIENT_CAPACITY, &key);
            self.remove(id);
            return;
        };
        let relayed = SocketAddr::new(self.config.relay_ip, local.port());
        a.relayed = Some(relayed);
        let attrs: Vec<Box<dyn rtc_stun::message::Setter>> = vec![
            Box::new(RelayedAddress { ip: relayed.ip(), port: relayed.port() }),
            Box::new(Lifetime(pending.lifetime)),
            Box::new(XorMappedAddress { ip: client.addr.ip(), port: client.addr.port() }),
        ];
        let response = wire::success(pending.reply, attrs, Seal { key: Some(&key), crypto: self.crypto.crypto() });
        if let (Some(a), Some(response)) = (self.allocations.get_mut(&id), &response) {
            a.answered = Some((pending.reply.transaction_id, response.clone()));
        }
        self.set_deadline(id, now + pending.lifetime);
        self.stats.allocations_total += 1;
        self.send_to_client(client, response);
    }

    /// The allocation `m` is about, once authenticated by the username that made it.
    fn own_allocation(&mut self, now: Instant, client: ClientAddr, m: &mut Message) -> Option<(AllocId, Vec<u8>)> {
        let authed = self.authenticated(now, client, m)?;
        let to = ReplyTo::new(m);
        let Some(&id) = self.by_client.get(&client) else {
            self.stats.dropped_no_allocation += 1;
            self.fail(client, to, CODE_ALLOC_MISMATCH, &authed.key);
            return None;
        };
        let a = self.allocations.get(&id)?;
        if a.username != authed.username {
            self.fail(client, to, CODE_WRONG_CREDENTIALS, &authed.key);
            return None;
        }
        if a.relayed.is_none() {
            self.fail(client, to, CODE_ALLOC_MISMATCH, &authed.key);
            return None;
        }
        Some((id, authed.key))
    }

    pub(super) fn refresh(&mut self, now: Instant, client: ClientAddr, mut m: Message) {
        let Some((id, key)) = self.own_allocation(now, client, &mut m) else { return };
        let to = ReplyTo::new(&m);
        let mut asked = Lifetime::default();
        let lifetime = if asked.get_from(&m).is_ok() && asked.0.is_zero() { Duration::ZERO } else { self.lifetime(&m) };
        if lifetime.is_zero() {
            self.remove(id);
        } else {
            self.set_deadline(id, now + lifetime);
        }
        let seal = Seal { key: Some(&key), crypto: self.crypto.crypto() };
        let response = wire::success(to, vec![Box::new(Lifetime(lifetime))], seal);
        self.send_to_client(client, response);
    }

    pub(super) fn create_permission(&mut self, now: Instant, client: ClientAddr, mut m: Message) {
        let Some((id, key)) = self.own_allocation(now, client, &mut m) else { return };
        let to = ReplyTo::new(&m);
        let peers = wire::peer_addresses(&m).unwrap_or_default();
        if peers.is_empty() {
            return self.fail(client, to, CODE_BAD_REQUEST, &key);
        }
        // Only this node's media sockets: never an open relay. Nothing is installed unless
        // every address asked for passes.
        if peers.iter().any(|p| self.config.media.local_for(*p).is_none()) {
            self.stats.refused_peers += 1;
            return self.fail(client, to, CODE_FORBIDDEN, &key);
        }
        let ips: Vec<_> = peers.iter().map(|p| p.ip()).collect();
        let max = self.config.limits.max_permissions;
        let Some(a) = self.allocations.get_mut(&id) else { return };
        if !a.can_permit(&ips, now, max) {
            self.stats.quota_refusals += 1;
            return self.fail(client, to, CODE_INSUFFICIENT_CAPACITY, &key);
        }
        for ip in ips {
            a.permit(ip, now, max);
        }
        let response = wire::success(to, Vec::new(), Seal { key: Some(&key), crypto: self.crypto.crypto() });
        self.send_to_client(client, response);
    }

    pub(super) fn channel_bind(&mut self, now: Instant, client: ClientAddr, mut m: Message) {
        let Some((id, key)) = self.own_allocation(now, client, &mut m) else { return };
        let to = ReplyTo::new(&m);
        let mut number = ChannelNumber::default();
        let peer = wire::peer_address(&m);
        let (Ok(()), Some(peer)) = (number.get_from(&m), peer) else {
            return self.fail(client, to, CODE_BAD_REQUEST, &key);
        };
        if !CHANNELS.contains(&number.0) {
            return self.fail(client, to, CODE_BAD_REQUEST, &key);
        }
        if self.config.media.local_for(peer).is_none() {
            self.stats.refused_peers += 1;
            return self.fail(client, to, CODE_FORBIDDEN, &key);
        }
        let limits = &self.config.limits;
        let (max_channels, max_permissions) = (limits.max_channels, limits.max_permissions);
        let Some(a) = self.allocations.get_mut(&id) else { return };
        match a.bind_channel(number.0, peer, now, max_channels, max_permissions) {
            Ok(()) => {
                let response = wire::success(to, Vec::new(), Seal { key: Some(&key), crypto: self.crypto.crypto() });
                self.send_to_client(client, response);
            }
            Err(BindRefusal::Conflict) => self.fail(client, to, CODE_BAD_REQUEST, &key),
            Err(BindRefusal::Full) => {
                self.stats.quota_refusals += 1;
                self.fail(client, to, CODE_INSUFFICIENT_CAPACITY, &key);
            }
        }
    }

    /// The lifetime a request gets: what it asks, at least the default, at most the maximum.
    fn lifetime(&self, m: &Message) -> Duration {
        let limits = &self.config.limits;
        let mut asked = Lifetime::default();
        let asked = if asked.get_from(m).is_ok() { asked.0 } else { limits.default_lifetime };
        asked.clamp(limits.default_lifetime.min(limits.max_lifetime), limits.max_lifetime)
    }
}
