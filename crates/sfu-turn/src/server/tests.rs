//! The core in virtual time, with a hand-made client: credentials, the permission rule, data
//! both ways, lifetimes and bounds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::credentials::RestSecret;
use crate::testing::{
    self, Attrs, Creds, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};

const SECRET: &[u8] = b"core-test-secret";
const UNIX0: u64 = 1_800_000_000;

fn media() -> SocketAddr {
    "127.0.0.1:7882".parse().unwrap()
}

struct Bench {
    core: TurnCore,
    t0: Instant,
    client: ClientAddr,
    tid: u8,
}

impl Bench {
    fn new(limits: Limits) -> Self {
        let t0 = Instant::now();
        let config = CoreConfig {
            realm: "sfu".into(),
            secret: RestSecret::new(SECRET),
            nonce_key: [3; 32],
            relay_ip: "127.0.0.1".parse().unwrap(),
            media: MediaAddresses::new([(media(), media())]),
            limits,
        };
        let core = TurnCore::new(config, WallClock { at: t0, unix_secs: UNIX0 }).unwrap();
        let client = ClientAddr { transport: Transport::Udp, addr: "127.0.0.1:50000".parse().unwrap() };
        Bench { core, t0, client, tid: 0 }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    /// Sends a request, returns the client's replies (and opens relay sockets on 40000+id).
    fn ask(
        &mut self,
        now: Instant,
        method: rtc_stun::message::Method,
        attrs: &Attrs,
        creds: Option<&Creds>,
    ) -> testing::Reply {
        self.tid += 1;
        let bytes = testing::request(method, [self.tid; 12], attrs, creds);
        self.core.handle_client(now, self.client, &bytes);
        self.open_relays(now);
        let replies = self.replies(creds);
        assert_eq!(replies.len(), 1, "one reply to one request: {replies:?}");
        replies.into_iter().next().unwrap()
    }

    fn open_relays(&mut self, now: Instant) {
        while let Some(e) = self.core.poll_event() {
            if let Event::OpenRelay(id) = e {
                self.core.handle_relay_opened(now, id, Ok(SocketAddr::from(([127, 0, 0, 1], 40000 + id.0 as u16))));
            }
        }
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.core.poll_transmit()).collect()
    }

    fn replies(&mut self, creds: Option<&Creds>) -> Vec<testing::Reply> {
        self.transmits()
            .into_iter()
            .map(|t| match t {
                Transmit::ToClient { data, .. } => testing::read(&data, creds).expect("a STUN reply"),
                other => panic!("expected a reply, got {other:?}"),
            })
            .collect()
    }

    /// Credentials minted now for `ttl`, with the realm and nonce of a challenge.
    fn login(&mut self, now: Instant, ttl: u64) -> Creds {
        let challenge = self.ask(now, METHOD_ALLOCATE, &Attrs::default(), None);
        assert_eq!(challenge.error, Some(401));
        let minted = RestSecret::new(SECRET).mint("alice", self.core.unix_now(now), Duration::from_secs(ttl));
        Creds {
            username: minted.username,
            password: minted.password,
            realm: challenge.realm.unwrap(),
            nonce: challenge.nonce.unwrap(),
        }
    }

    fn allocate(&mut self, now: Instant) -> (Creds, SocketAddr) {
        let creds = self.login(now, 3600);
        let ok = self.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds));
        assert_eq!((ok.error, ok.signed_with), (None, Some(true)), "{ok:?}");
        (creds, ok.relayed.unwrap())
    }
}

fn peers(list: &[SocketAddr]) -> Attrs {
    Attrs { peers: list.to_vec(), ..Attrs::default() }
}

#[test]
fn good_credentials_allocate_a_relayed_address() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let (_, relayed) = b.allocate(now);
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert_eq!(b.core.stats().allocations, 1);
    assert_eq!(b.core.stats().allocations_total, 1);
    assert_eq!(b.core.stats().challenges, 1);
    assert_eq!(b.core.poll_timeout(), Some(now + Duration::from_secs(600)));
}

#[test]
fn expired_forged_and_foreign_credentials_get_401() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(10);
    let good = b.login(now, 60);
    let mut expired = good.clone();
    let old = RestSecret::new(SECRET).mint("alice", UNIX0 - 100, Duration::from_secs(50));
    (expired.username, expired.password) = (old.username, old.password);
    let mut forged = good.clone();
    forged.password = "not-the-password".into();
    let mut other_secret = good.clone();
    other_secret.password = RestSecret::new(b"another secret").password_for(&good.username);
    let mut not_rest = good.clone();
    not_rest.username = "alice".into();
    not_rest.password = RestSecret::new(SECRET).password_for("alice");
    let mut other_realm = good.clone();
    other_realm.realm = "elsewhere".into();
    for creds in [&expired, &forged, &other_secret, &not_rest, &other_realm] {
        let r = b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(creds));
        assert_eq!(r.error, Some(401), "{creds:?}");
        assert!(r.nonce.is_some() && r.realm.as_deref() == Some("sfu"));
    }
    assert_eq!(b.core.stats().auth_expired, 1);
    assert_eq!(b.core.stats().auth_rejected, 4);
    assert_eq!(b.core.stats().allocations, 0);
    // The credential minted for 60 s works until then, not after.
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&good)).error, None);
    b.client.addr.set_port(50001);
    let mut late = good.clone();
    late.nonce = b.login(b.at(80), 60).nonce;
    assert_eq!(b.ask(b.at(80), METHOD_ALLOCATE, &Attrs::default(), Some(&late)).error, Some(401));
}

#[test]
fn a_stale_or_foreign_nonce_gets_438_and_a_new_one() {
    let mut b = Bench::new(Limits::default());
    let mut creds = b.login(b.at(0), 86_400);
    creds.nonce = "0000000000000000ffffffffffffffff".into();
    let r = b.ask(b.at(0), METHOD_ALLOCATE, &Attrs::default(), Some(&creds));
    assert_eq!(r.error, Some(438));
    creds.nonce = r.nonce.unwrap();
    // Valid for an hour.
    let r = b.ask(b.at(4000), METHOD_ALLOCATE, &Attrs::default(), Some(&creds));
    assert_eq!(r.error, Some(438));
    creds.nonce = r.nonce.unwrap();
    assert_eq!(b.ask(b.at(4000), METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, None);
}

#[test]
fn permissions_and_channels_only_for_this_nodes_media() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let (creds, _) = b.allocate(now);
    let foreign: [SocketAddr; 4] = [
        "127.0.0.1:7883".parse().unwrap(), // another port of ours
        "127.0.0.2:7882".parse().unwrap(),
        "10.0.0.1:7882".parse().unwrap(),
        "[::1]:7882".parse().unwrap(),
    ];
    for peer in foreign {
        let r = b.ask(now, METHOD_CREATE_PERMISSION, &peers(&[peer]), Some(&creds));
        assert_eq!((r.error, r.signed_with), (Some(403), Some(true)), "{peer}");
        let bind = Attrs { channel: Some(0x4000), ..peers(&[peer]) };
        assert_eq!(b.ask(now, METHOD_CHANNEL_BIND, &bind, Some(&creds)).error, Some(403), "{peer}");
    }
    // One good address beside a foreign one: refused whole.
    assert_eq!(b.ask(now, METHOD_CREATE_PERMISSION, &peers(&[media(), foreign[2]]), Some(&creds)).error, Some(403));
    assert_eq!(b.core.stats().refused_peers, 9);
    // A Send to a foreign address never leaves, even with a permission for the media address.
    assert_eq!(b.ask(now, METHOD_CREATE_PERMISSION, &peers(&[media()]), Some(&creds)).error, None);
    for peer in foreign {
        b.core.handle_client(now, b.client, &testing::send_indication(peer, b"hello"));
    }
    assert!(b.transmits().is_empty());
    b.core.handle_client(now, b.client, &testing::send_indication(media(), b"hello"));
    let id = b.core.by_client[&b.client];
    assert_eq!(b.transmits(), vec![Transmit::ToPeer { alloc: id, to: media(), data: b"hello".to_vec() }]);
    // Datagrams to the relay socket from anyone but the media socket are dropped.
    b.core.handle_peer(now, id, "127.0.0.1:9999".parse().unwrap(), b"spoof");
    assert!(b.transmits().is_empty());
    assert_eq!(b.core.stats().dropped_no_permission, 5);
}

#[test]
fn data_flows_both_ways_by_indication_and_by_channel() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let (creds, _) = b.allocate(now);
    let id = b.core.by_client[&b.client];
    // No permission yet: nothing moves.
    b.core.handle_client(now, b.client, &testing::send_indication(media(), b"early"));
    b.core.handle_peer(now, id, media(), b"early");
    assert!(b.transmits().is_empty());
    assert_eq!(b.ask(now, METHOD_CREATE_PERMISSION, &peers(&[media()]), Some(&creds)).error, None);
    b.core.handle_peer(now, id, media(), b"from the sfu");
    let data = b.replies(None);
    assert_eq!((data[0].peer, data[0].data.as_deref()), (Some(media()), Some(&b"from the sfu"[..])));
    let bind = Attrs { channel: Some(0x4001), ..peers(&[media()]) };
    assert_eq!(b.ask(now, METHOD_CHANNEL_BIND, &bind, Some(&creds)).error, None);
    b.core.handle_client(now, b.client, &testing::channel_data(0x4001, b"stun check"));
    assert_eq!(b.transmits(), vec![Transmit::ToPeer { alloc: id, to: media(), data: b"stun check".to_vec() }]);
    b.core.handle_peer(now, id, media(), b"answer");
    assert_eq!(
        b.transmits(),
        vec![Transmit::ToClient { client: b.client, data: testing::channel_data(0x4001, b"answer") }]
    );
    // An unbound channel number carries nothing.
    b.core.handle_client(now, b.client, &testing::channel_data(0x4002, b"x"));
    assert!(b.transmits().is_empty());
    // Permissions lapse after 5 minutes without a refresh, even with the channel still bound.
    b.core.handle_client(b.at(299), b.client, &testing::channel_data(0x4001, b"late"));
    assert_eq!(b.transmits().len(), 1);
    b.core.handle_client(b.at(301), b.client, &testing::channel_data(0x4001, b"late"));
    b.core.handle_peer(b.at(301), id, media(), b"late");
    assert!(b.transmits().is_empty());
    let s = b.core.stats();
    assert_eq!((s.bytes_to_peers, s.bytes_to_clients), (14, 18));
}

#[test]
fn stream_clients_get_padded_channel_data() {
    let mut b = Bench::new(Limits::default());
    b.client.transport = Transport::Tcp;
    let now = b.at(0);
    let (creds, _) = b.allocate(now);
    let bind = Attrs { channel: Some(0x4000), ..peers(&[media()]) };
    assert_eq!(b.ask(now, METHOD_CHANNEL_BIND, &bind, Some(&creds)).error, None);
    let id = b.core.by_client[&b.client];
    b.core.handle_peer(now, id, media(), b"abcde");
    assert_eq!(
        b.transmits(),
        vec![Transmit::ToClient { client: b.client, data: vec![0x40, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0] }]
    );
    // The connection closing takes the allocation with it.
    b.core.handle_client_closed(now, b.client);
    assert_eq!(b.core.poll_event(), Some(Event::CloseRelay(id)));
    assert_eq!(b.core.stats().allocations, 0);
}

#[test]
fn allocations_expire_refresh_and_delete() {
    let mut b = Bench::new(Limits::default());
    let (creds, _) = b.allocate(b.at(0));
    let id = b.core.by_client[&b.client];
    let refresh = |secs| Attrs { lifetime: Some(Duration::from_secs(secs)), ..Attrs::default() };
    // Asked for more than the maximum: the maximum.
    let r = b.ask(b.at(500), METHOD_REFRESH, &refresh(100_000), Some(&creds));
    assert_eq!(r.lifetime, Some(Duration::from_secs(3600)));
    b.core.handle_timeout(b.at(1100));
    assert_eq!(b.core.stats().allocations, 1, "refreshed past its first lifetime");
    assert_eq!(b.core.poll_timeout(), Some(b.at(4100)));
    b.core.handle_timeout(b.at(4100));
    assert_eq!(b.core.poll_event(), Some(Event::CloseRelay(id)));
    assert_eq!(b.core.stats().allocations, 0);
    // A refresh of nothing: 437. A lifetime of 0 deletes at once.
    let mut creds = b.login(b.at(4100), 86_400);
    assert_eq!(b.ask(b.at(4100), METHOD_REFRESH, &refresh(600), Some(&creds)).error, Some(437));
    assert_eq!(b.ask(b.at(4100), METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, None);
    assert_eq!(b.ask(b.at(4100), METHOD_REFRESH, &refresh(0), Some(&creds)).lifetime, Some(Duration::ZERO));
    assert_eq!(b.core.stats().allocations, 0);
    assert_eq!(b.core.poll_timeout(), None);
    // Another username cannot touch this client's allocation.
    assert_eq!(b.ask(b.at(4100), METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, None);
    let other = RestSecret::new(SECRET).mint("mallory", UNIX0 + 4100, Duration::from_secs(600));
    (creds.username, creds.password) = (other.username, other.password);
    assert_eq!(b.ask(b.at(4100), METHOD_REFRESH, &refresh(600), Some(&creds)).error, Some(441));
}

#[test]
fn a_retransmitted_allocate_gets_the_same_answer_another_gets_437() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let creds = b.login(now, 3600);
    let bytes = testing::request(METHOD_ALLOCATE, [77; 12], &Attrs::default(), Some(&creds));
    b.core.handle_client(now, b.client, &bytes);
    b.open_relays(now);
    let first = b.transmits();
    b.core.handle_client(now, b.client, &bytes);
    assert_eq!(b.transmits(), first);
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, Some(437));
    assert_eq!(b.core.stats().allocations_total, 1);
}

#[test]
fn bounds_on_allocations_and_transports() {
    let mut b = Bench::new(Limits { max_allocations: 3, max_allocations_per_ip: 2, ..Limits::default() });
    let now = b.at(0);
    let creds = b.login(now, 3600);
    for port in [1, 2] {
        b.client.addr.set_port(port);
        assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, None);
    }
    b.client.addr.set_port(3);
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, Some(486));
    // Another IP (its own nonce): one more fits, then the server is full.
    b.client.addr = "127.0.0.9:1".parse().unwrap();
    let creds = b.login(now, 3600);
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, None);
    b.client.addr.set_port(2);
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &Attrs::default(), Some(&creds)).error, Some(508));
    assert_eq!(b.core.stats().quota_refusals, 2);
    // TCP relays are not offered.
    b.client.addr.set_port(3);
    let tcp = Attrs { transport: Some(6), ..Attrs::default() };
    assert_eq!(b.ask(now, METHOD_ALLOCATE, &tcp, Some(&creds)).error, Some(442));
}

#[test]
fn a_relay_socket_that_cannot_open_fails_the_allocate() {
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let creds = b.login(now, 3600);
    let bytes = testing::request(METHOD_ALLOCATE, [9; 12], &Attrs::default(), Some(&creds));
    b.core.handle_client(now, b.client, &bytes);
    let Some(Event::OpenRelay(id)) = b.core.poll_event() else { panic!("no OpenRelay") };
    b.core.handle_relay_opened(now, id, Err(()));
    assert_eq!(b.replies(Some(&creds))[0].error, Some(508));
    assert_eq!(b.core.poll_event(), Some(Event::CloseRelay(id)));
    // And one the shell never answers is dropped after the open timeout.
    let bytes = testing::request(METHOD_ALLOCATE, [10; 12], &Attrs::default(), Some(&creds));
    b.core.handle_client(now, b.client, &bytes);
    let Some(Event::OpenRelay(id)) = b.core.poll_event() else { panic!("no OpenRelay") };
    b.core.handle_timeout(b.at(5));
    assert_eq!(b.core.poll_event(), Some(Event::CloseRelay(id)));
    b.core.handle_relay_opened(b.at(6), id, Ok("127.0.0.1:40000".parse().unwrap()));
    assert_eq!(b.core.poll_event(), Some(Event::CloseRelay(id)));
    assert!(b.transmits().is_empty());
}

#[test]
fn random_bytes_never_panic_and_are_counted() {
    use rand::{Rng, SeedableRng};
    let mut b = Bench::new(Limits::default());
    let now = b.at(0);
    let (creds, _) = b.allocate(now);
    let id = b.core.by_client[&b.client];
    let good = testing::request(METHOD_CREATE_PERMISSION, [4; 12], &peers(&[media()]), Some(&creds));
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            let n = rng.random_range(0..200);
            (0..n).map(|_| rng.random()).collect::<Vec<u8>>()
        } else {
            // A real request with a few bytes flipped or cut.
            let mut m = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
            }
            m.truncate(rng.random_range(0..=m.len()));
            m
        };
        if round % 3 == 0 && !bytes.is_empty() {
            bytes[0] &= 0x7f; // STUN or ChannelData more often
        }
        b.core.handle_client(now, b.client, &bytes);
        b.core.handle_peer(now, id, media(), &bytes);
        b.transmits();
    }
    assert!(b.core.stats().dropped_malformed > 0);
    assert_eq!(b.core.stats().allocations, 1);
}
