//! The embedded TURN server's sans-IO core: every decision, no socket, no clock (see the crate
//! docs for how to drive it). `mod.rs` holds the state, the inputs and outputs; `auth.rs`
//! checks credentials, `requests.rs` answers Allocate, Refresh, CreatePermission and
//! ChannelBind, `relay.rs` moves data between clients and this node's media sockets.

mod allocation;
mod auth;
mod relay;
mod requests;
#[cfg(test)]
mod tests;

use rtc_stun::crypto::{CryptoError, RTCCryptoProvider};
use rtc_stun::message::{
    CLASS_INDICATION, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
    METHOD_REFRESH, METHOD_SEND, Message,
};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::credentials::RestSecret;
use crate::framing::{Kind, kind_of};
use crate::media_addresses::MediaAddresses;
use crate::nonce::Nonces;
use crate::stats::TurnStats;
use crate::wire;
use allocation::Allocation;

/// How a client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams on the UDP listener.
    Udp,
    /// Frames on a TCP connection.
    Tcp,
    /// Frames on a TLS connection.
    Tls,
}

/// A client: its transport and address. With one listener per transport this names the
/// 5-tuple an allocation belongs to (for TCP and TLS: one connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr {
    /// How it reaches the server.
    pub transport: Transport,
    /// Its address as the server's socket sees it.
    pub addr: SocketAddr,
}

impl ClientAddr {
    /// Whether it speaks over a stream (ChannelData is then padded to 4 bytes).
    pub fn is_stream(&self) -> bool {
        self.transport != Transport::Udp
    }
}

/// An allocation, named by the core; the shell keys its relay sockets by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocId(pub u64);

/// A datagram or frame for the shell to send.
#[derive(Debug, PartialEq, Eq)]
pub enum Transmit {
    /// To a client, on the listener (or connection) it came from.
    ToClient {
        /// Who gets it.
        client: ClientAddr,
        /// A STUN message or a ChannelData frame (padded for streams).
        data: Vec<u8>,
    },
    /// From an allocation's relay socket to one of this node's media sockets.
    ToPeer {
        /// Whose relay socket sends it.
        alloc: AllocId,
        /// The media socket's own address.
        to: SocketAddr,
        /// The payload, as the client sent it.
        data: Vec<u8>,
    },
}

/// Something the shell must do besides sending.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Bind a relay socket for this allocation, then call [`TurnCore::handle_relay_opened`].
    OpenRelay(AllocId),
    /// The allocation is gone: close its relay socket (or forget opening one).
    CloseRelay(AllocId),
}

/// One wall-clock reading and the `Instant` of the same moment: credential and nonce expiry
/// are in unix seconds, and the core never reads the clock itself.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    /// The instant of the reading.
    pub at: Instant,
    /// Unix seconds at `at`.
    pub unix_secs: u64,
}

impl WallClock {
    /// Unix seconds at `now`.
    pub fn unix_at(&self, now: Instant) -> u64 {
        self.unix_secs + now.saturating_duration_since(self.at).as_secs()
    }
}

/// Bounds on what clients can make the server hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Allocations in all (508 past it).
    pub max_allocations: usize,
    /// Allocations from one client IP (486 past it).
    pub max_allocations_per_ip: usize,
    /// Permissions per allocation (508 past it). A client needs one per media IP of this node.
    pub max_permissions: usize,
    /// Channels per allocation (508 past it). A client needs one per media socket it uses.
    pub max_channels: usize,
    /// Lifetime given when the client asks for none (or for less).
    pub default_lifetime: Duration,
    /// Longest lifetime given.
    pub max_lifetime: Duration,
    /// How long the shell may take to open a relay socket before the allocation is dropped.
    pub open_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_allocations: 1000,
            max_allocations_per_ip: 64,
            max_permissions: 8,
            max_channels: 32,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            open_timeout: Duration::from_secs(5),
        }
    }
}

/// What the core is configured with.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The REALM of the long-term credentials.
    pub realm: String,
    /// The REST secret credentials are checked against.
    pub secret: RestSecret,
    /// Key of the stateless nonces: random per process.
    pub nonce_key: [u8; 32],
    /// The IP of relayed addresses as clients reach them (the node's announced IP).
    pub relay_ip: IpAddr,
    /// The only peers relayed to.
    pub media: MediaAddresses,
    /// Bounds.
    pub limits: Limits,
}

/// The sans-IO TURN server.
pub struct TurnCore {
    config: CoreConfig,
    wall: WallClock,
    crypto: Arc<dyn RTCCryptoProvider>,
    nonces: Nonces,
    allocations: HashMap<AllocId, Allocation>,
    by_client: HashMap<ClientAddr, AllocId>,
    per_ip: HashMap<IpAddr, usize>,
    /// Every allocation under its expiry (or, while its socket opens, its open timeout).
    deadlines: BTreeSet<(Instant, AllocId)>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: TurnStats,
}

impl TurnCore {
    /// A core with no allocation. Fails only if the STUN crypto provider is missing.
    pub fn new(config: CoreConfig, wall: WallClock) -> Result<Self, CryptoError> {
        Ok(TurnCore {
            nonces: Nonces::new(&config.nonce_key),
            config,
            wall,
            crypto: rtc_stun::crypto::default_provider()?,
            allocations: HashMap::new(),
            by_client: HashMap::new(),
            per_ip: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: TurnStats::default(),
        })
    }

    /// A datagram (UDP) or a whole frame (TCP, TLS) from a client.
    pub fn handle_client(&mut self, now: Instant, client: ClientAddr, bytes: &[u8]) {
        match kind_of(bytes) {
            Some(Kind::ChannelData) => self.channel_data_from_client(now, client, bytes),
            Some(Kind::Stun) => match wire::parse(bytes) {
                Some(m) => self.stun_from_client(now, client, m),
                None => self.stats.dropped_malformed += 1,
            },
            None => self.stats.dropped_malformed += 1,
        }
    }

    fn stun_from_client(&mut self, now: Instant, client: ClientAddr, m: Message) {
        match (m.typ.class, m.typ.method) {
            (CLASS_REQUEST, METHOD_BINDING) => self.binding(client, &m),
            (CLASS_REQUEST, METHOD_ALLOCATE) => self.allocate(now, client, m),
            (CLASS_REQUEST, METHOD_REFRESH) => self.refresh(now, client, m),
            (CLASS_REQUEST, METHOD_CREATE_PERMISSION) => self.create_permission(now, client, m),
            (CLASS_REQUEST, METHOD_CHANNEL_BIND) => self.channel_bind(now, client, m),
            (CLASS_INDICATION, METHOD_SEND) => self.send_indication(now, client, &m),
            (CLASS_REQUEST, _) => self.unknown_request(client, &m),
            // Responses and other indications: nothing a server acts on.
            _ => self.stats.dropped_malformed += 1,
        }
    }

    /// A client's TCP or TLS connection ended: its allocation goes with it (RFC 8656 section 3.1).
    pub fn handle_client_closed(&mut self, _now: Instant, client: ClientAddr) {
        if let Some(&id) = self.by_client.get(&client) {
            self.remove(id);
        }
    }

    /// Drops allocations whose lifetime (or open timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if self.allocations.get(&id).is_some_and(|a| a.expires == at) {
                self.remove(id);
            }
        }
    }

    /// The next datagram or frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the shell must do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Counters since start.
    pub fn stats(&self) -> &TurnStats {
        &self.stats
    }

    /// The relayed address of `client`'s allocation, if it has one that is open.
    pub fn relayed_address(&self, client: ClientAddr) -> Option<SocketAddr> {
        self.allocations.get(self.by_client.get(&client)?)?.relayed
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.wall.unix_at(now)
    }

    fn send_to_client(&mut self, client: ClientAddr, data: Option<Vec<u8>>) {
        match data {
            Some(data) => self.transmits.push_back(Transmit::ToClient { client, data }),
            // Building a message fails only on attributes over their size limits, which the
            // server never makes; count it rather than panic.
            None => self.stats.dropped_malformed += 1,
        }
    }

    /// Files allocation `id` under `at` (replacing its previous deadline).
    fn set_deadline(&mut self, id: AllocId, at: Instant) {
        if let Some(a) = self.allocations.get_mut(&id) {
            self.deadlines.remove(&(a.expires, id));
            a.expires = at;
            self.deadlines.insert((at, id));
        }
    }

    fn remove(&mut self, id: AllocId) {
        let Some(a) = self.allocations.remove(&id) else { return };
        self.deadlines.remove(&(a.expires, id));
        self.by_client.remove(&a.client);
        let ip = a.client.addr.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.stats.allocations = self.allocations.len() as u64;
        self.events.push_back(Event::CloseRelay(id));
    }
}
