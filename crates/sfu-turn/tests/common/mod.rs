//! A running embedded server on loopback with a stand-in media socket, and hand-made TURN
//! clients over UDP and streams.

#![allow(dead_code)]

use sfu_turn::credentials::RestSecret;
use sfu_turn::testing::{self, Attrs, Creds, Reply};
use sfu_turn::{CoreConfig, Limits, MediaAddresses, RunningTurn, ShellConfig, StreamFramer, TlsSettings};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

pub const SECRET: &[u8] = b"loopback-test-secret";
/// Every wait in these tests: generous for a busy 2-core machine.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A server relaying only to `media`, listening on UDP and TCP (and TLS when given).
pub async fn server(media: SocketAddr, tls: Option<TlsSettings>, first_frame: Duration) -> RunningTurn {
    let config = ShellConfig {
        core: CoreConfig {
            realm: "sfu".into(),
            secret: RestSecret::new(SECRET),
            nonce_key: rand_key(),
            relay_ip: "127.0.0.1".parse().unwrap(),
            media: MediaAddresses::new([(media, media)]),
            limits: Limits::default(),
        },
        bind: "127.0.0.1".parse().unwrap(),
        udp_port: Some(0),
        tcp_port: Some(0),
        tls,
        relay_ports: 0..=0,
        max_streams: 16,
        max_streams_per_ip: 8,
        first_frame_timeout: first_frame,
        idle_timeout: Duration::from_secs(30),
    };
    sfu_turn::start(config).await.expect("the server starts")
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = (unix_now() as u8).wrapping_add(i as u8);
    }
    k
}

/// A credential minted now for `identity`, valid `ttl_secs` (negative: expired that long ago).
pub fn credential(identity: &str, ttl_secs: i64) -> (String, String) {
    let secret = RestSecret::new(SECRET);
    let start = (unix_now() as i64 + ttl_secs.min(0) * 2) as u64;
    let minted = secret.mint(identity, start, Duration::from_secs(ttl_secs.unsigned_abs()));
    (minted.username, minted.password)
}

/// How a test client reaches the server.
#[allow(async_fn_in_trait)]
pub trait Wire {
    async fn send(&mut self, bytes: &[u8]);
    /// The next STUN message or ChannelData frame, or `None` after [`WAIT`].
    async fn recv(&mut self) -> Option<Vec<u8>>;
}

pub struct UdpClient {
    pub socket: UdpSocket,
    pub server: SocketAddr,
}

impl UdpClient {
    pub async fn new(server: SocketAddr) -> Self {
        UdpClient { socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(), server }
    }
}

impl Wire for UdpClient {
    async fn send(&mut self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).await.unwrap();
    }
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buf)).await.ok()?.ok()?;
        Some(buf[..n].to_vec())
    }
}

pub struct StreamClient<S> {
    pub stream: S,
    framer: StreamFramer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamClient<S> {
    pub fn new(stream: S) -> Self {
        StreamClient { stream, framer: StreamFramer::new(70_000) }
    }

    /// Whether the server closed the connection within [`WAIT`] (reading and discarding).
    pub async fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for StreamClient<S> {
    async fn send(&mut self, bytes: &[u8]) {
        let mut framed = bytes.to_vec();
        // ChannelData is padded on streams.
        if bytes.first().is_some_and(|b| b >> 6 == 1) {
            framed.resize(bytes.len().next_multiple_of(4), 0);
        }
        self.stream.write_all(&framed).await.unwrap();
    }
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.framer.next_frame().ok()? {
                return Some(frame);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            self.framer.push(&buf[..n]);
        }
    }
}

/// A TURN client's session: the transaction counter and the credentials once challenged.
pub struct Session<W> {
    pub wire: W,
    pub creds: Option<Creds>,
    tid: u32,
}

impl<W: Wire> Session<W> {
    pub fn new(wire: W) -> Self {
        Session { wire, creds: None, tid: 0 }
    }

    /// Sends a request and reads the response to it (skipping anything else).
    pub async fn ask(&mut self, method: rtc_stun::message::Method, attrs: &Attrs) -> Option<Reply> {
        self.tid += 1;
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&self.tid.to_be_bytes());
        self.wire.send(&testing::request(method, tid, attrs, self.creds.as_ref())).await;
        loop {
            let bytes = self.wire.recv().await?;
            if let Some(reply) = testing::read(&bytes, self.creds.as_ref())
                && reply.tid == tid
            {
                return Some(reply);
            }
        }
    }

    /// The 401 challenge, then an Allocate with `username`/`password`.
    pub async fn allocate(&mut self, username: &str, password: &str) -> Option<Reply> {
        self.creds = None;
        let challenge = self.ask(testing::METHOD_ALLOCATE, &Attrs::default()).await?;
        assert_eq!(challenge.error, Some(401), "the first Allocate is challenged");
        self.creds = Some(Creds {
            username: username.into(),
            password: password.into(),
            realm: challenge.realm.clone()?,
            nonce: challenge.nonce.clone()?,
        });
        self.ask(testing::METHOD_ALLOCATE, &Attrs::default()).await
    }
}

/// A UDP socket standing in for a media shard.
pub async fn media_socket() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

pub async fn recv_from(socket: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf)).await.ok()?.ok()?;
    Some((buf[..n].to_vec(), from))
}

/// Waits until `f` holds for the server's stats (they are published after each input).
pub async fn stats_until(turn: &RunningTurn, f: impl Fn(&sfu_turn::TurnStats) -> bool) -> sfu_turn::TurnStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = turn.stats();
        if f(&s) || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
