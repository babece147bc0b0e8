//! The embedded TURN server's core under any sequence of inputs, from a start where one client
//! holds an allocation with a permission and a channel for the node's media address: raw
//! datagrams and frames from that client and from others, requests signed with its credentials
//! (any method, any peers, any channel), datagrams reaching its relay socket from anywhere, relay
//! sockets that open or fail, closed connections and time passing.
//!
//! What must hold: nothing ever leaves a relay socket for an address that is not the node's
//! media socket (never an open relay), and the bounds on allocations hold.

use sfu_turn::credentials::RestSecret;
use sfu_turn::testing::{self, Attrs, Creds};
use sfu_turn::{
    AllocId, ClientAddr, CoreConfig, Event, Limits, MediaAddresses, Transmit, Transport, TurnCore, WallClock,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"fuzz-turn-secret";
const MAX_ALLOCATIONS: u64 = 4;

struct Bench {
    core: TurnCore,
    now: Instant,
    media: SocketAddr,
    next_port: u16,
    /// Relay sockets open now, as the shell would hold them.
    open: Vec<AllocId>,
    /// The next relay socket fails to open.
    fail_next_open: bool,
}

impl Bench {
    /// Sends what the core queued (checking where it goes) and opens what it asks for.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut to_clients = Vec::new();
        loop {
            while let Some(t) = self.core.poll_transmit() {
                match t {
                    Transmit::ToPeer { alloc, to, .. } => {
                        assert_eq!(to, self.media, "relayed to a peer that is not the node's media socket");
                        assert!(self.open.contains(&alloc), "relayed from a socket that is not open");
                    }
                    Transmit::ToClient { data, .. } => to_clients.push(data),
                }
            }
            let Some(event) = self.core.poll_event() else { break };
            match event {
                Event::OpenRelay(id) => {
                    let result = if std::mem::take(&mut self.fail_next_open) {
                        Err(())
                    } else {
                        self.open.push(id);
                        self.next_port = self.next_port.wrapping_add(1).max(1024);
                        Ok(SocketAddr::from(([127, 0, 0, 1], self.next_port)))
                    };
                    self.core.handle_relay_opened(self.now, id, result);
                }
                Event::CloseRelay(id) => self.open.retain(|o| *o != id),
            }
        }
        assert!(self.core.stats().allocations <= MAX_ALLOCATIONS, "{:?}", self.core.stats());
        to_clients
    }

    fn ask(&mut self, client: ClientAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.core.handle_client(self.now, client, bytes);
        self.drain()
    }
}

/// Each operation is an opcode byte, a length byte and that many bytes.
pub fn turn_sequence(data: &[u8]) {
    let t0 = Instant::now();
    let media: SocketAddr = "127.0.0.1:7882".parse().expect("an address");
    let config = CoreConfig {
        realm: "sfu".into(),
        secret: RestSecret::new(SECRET),
        nonce_key: [1; 32],
        relay_ip: "127.0.0.1".parse().expect("an address"),
        media: MediaAddresses::new([(media, media)]),
        limits: Limits {
            max_allocations: MAX_ALLOCATIONS as usize,
            max_allocations_per_ip: 3,
            max_permissions: 2,
            max_channels: 2,
            ..Limits::default()
        },
    };
    let core = TurnCore::new(config, WallClock { at: t0, unix_secs: 1_900_000_000 }).expect("a crypto provider");
    let mut b = Bench { core, now: t0, media, next_port: 40000, open: Vec::new(), fail_next_open: false };
    let alice = ClientAddr { transport: Transport::Udp, addr: "127.0.0.1:5000".parse().expect("an address") };
    let bob = ClientAddr { transport: Transport::Tcp, addr: "127.0.0.2:6000".parse().expect("an address") };

    // Alice: challenged, allocated, permitted and bound to the media socket.
    let replies = b.ask(alice, &testing::request(testing::METHOD_ALLOCATE, [1; 12], &Attrs::default(), None));
    let challenge = testing::read(&replies[0], None).expect("a challenge");
    let minted = RestSecret::new(SECRET).mint("alice", 1_900_000_000, Duration::from_secs(3600));
    let creds = Creds {
        username: minted.username,
        password: minted.password,
        realm: challenge.realm.expect("a realm"),
        nonce: challenge.nonce.expect("a nonce"),
    };
    b.ask(alice, &testing::request(testing::METHOD_ALLOCATE, [2; 12], &Attrs::default(), Some(&creds)));
    let bind = Attrs { peers: vec![media], channel: Some(0x4000), ..Attrs::default() };
    b.ask(alice, &testing::request(testing::METHOD_CHANNEL_BIND, [3; 12], &bind, Some(&creds)));
    let Some(&alice_alloc) = b.open.first() else { panic!("alice has no relay socket") };

    let methods = [
        testing::METHOD_ALLOCATE,
        testing::METHOD_REFRESH,
        testing::METHOD_CREATE_PERMISSION,
        testing::METHOD_CHANNEL_BIND,
        testing::METHOD_BINDING,
    ];
    let mut rest = data;
    let mut tid = 10u8;
    while let [op, len, tail @ ..] = rest {
        let (bytes, after) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = after;
        let pick = |i: usize| bytes.get(i).copied().unwrap_or(0);
        match op % 8 {
            0 => drop(b.ask(alice, bytes)),
            1 => drop(b.ask(bob, bytes)),
            2 => {
                // A peer datagram: from the media socket, or from anywhere else.
                let from =
                    if pick(0) % 2 == 0 { media } else { SocketAddr::from(([127, 0, 0, pick(1)], u16::from(pick(2)))) };
                let id = if pick(3) % 4 == 0 { AllocId(u64::from(pick(4))) } else { alice_alloc };
                b.core.handle_peer(b.now, id, from, bytes);
                b.drain();
            }
            3 => {
                b.now += Duration::from_secs(u64::from(pick(0)) * 8);
                b.core.handle_timeout(b.now);
                b.drain();
            }
            4 => {
                b.core.handle_client_closed(b.now, if pick(0) % 2 == 0 { bob } else { alice });
                b.drain();
            }
            5 => {
                // A request signed with alice's credentials: any method, peers, channel, lifetime.
                tid = tid.wrapping_add(1);
                let peers = bytes
                    .chunks(3)
                    .skip(1)
                    .map(|c| {
                        let p = c.first().copied().unwrap_or(0);
                        if p % 2 == 0 { media } else { SocketAddr::from(([127, 0, 0, p], 7882)) }
                    })
                    .collect();
                let attrs = Attrs {
                    transport: (pick(1) % 5 == 0).then_some(pick(2)),
                    lifetime: (pick(3) % 3 == 0).then(|| Duration::from_secs(u64::from(pick(4)) * 30)),
                    peers,
                    channel: (pick(5) % 2 == 0).then(|| 0x3ff0 + u16::from(pick(6))),
                };
                let method = methods[usize::from(pick(0)) % methods.len()];
                let client = if pick(7) % 3 == 0 { bob } else { alice };
                b.ask(client, &testing::request(method, [tid; 12], &attrs, Some(&creds)));
            }
            6 => {
                // ChannelData or a Send indication to any peer.
                let payload = bytes.get(2..).unwrap_or_default();
                let to = if pick(0) % 2 == 0 { media } else { SocketAddr::from(([127, 0, 0, pick(1)], 7882)) };
                let message = if pick(1) % 2 == 0 {
                    testing::channel_data(0x4000 + u16::from(pick(1) % 3), payload)
                } else {
                    testing::send_indication(to, payload)
                };
                b.ask(alice, &message);
            }
            _ => b.fail_next_open = true,
        }
    }
}
