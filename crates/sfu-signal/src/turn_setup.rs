//! Starts the embedded TURN server (`turn.enabled`) beside the media plane: it relays only to
//! the shards' UDP sockets, and its URLs come first in the servers clients are offered.

use rand::Rng;
use sfu_transport::MediaPlane;
use sfu_turn::credentials::RestSecret;
use sfu_turn::{CoreConfig, Limits, MediaAddresses, RunningTurn, ShellConfig, TlsSettings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;
use crate::ice_servers::{IceServers, embedded_urls};

/// A TLS handshake or first frame later than this closes the connection.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A TCP or TLS client silent this long is closed: with an allocation it sends consent checks
/// every few seconds.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The embedded server, when `turn.enabled`.
pub async fn start(config: &Config, media: &MediaPlane) -> anyhow::Result<Option<RunningTurn>> {
    let turn = &config.turn;
    if !turn.enabled {
        return Ok(None);
    }
    let announce = config.announce_ip().unwrap_or(config.bind);
    // The relay reaches the shards on this host at the address they are bound to.
    let local_ip = match config.bind {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let shards = media.relay_endpoints().into_iter().map(|e| (e.media, SocketAddr::new(local_ip, e.media.port())));
    let mut nonce_key = [0u8; 32];
    rand::rng().fill(&mut nonce_key);
    let port = |p: u16| (p != 0).then_some(p);
    let tls = match (turn.tls_port, &turn.cert_file, &turn.key_file) {
        (0, _, _) => None,
        (port, Some(cert_file), Some(key_file)) => {
            Some(TlsSettings { port, cert_file: cert_file.clone(), key_file: key_file.clone() })
        }
        // Refused by Config::validate.
        _ => None,
    };
    let shell = ShellConfig {
        core: CoreConfig {
            realm: turn.realm.clone(),
            secret: RestSecret::new(turn.secret.as_bytes()),
            nonce_key,
            relay_ip: announce,
            media: MediaAddresses::new(shards),
            limits: Limits {
                max_allocations: turn.max_allocations,
                max_allocations_per_ip: turn.max_allocations_per_ip,
                ..Limits::default()
            },
        },
        bind: config.bind,
        udp_port: port(turn.udp_port),
        tcp_port: port(turn.tcp_port),
        tls,
        relay_ports: turn.relay_port_min..=turn.relay_port_max,
        // One allocation per connection: the same caps.
        max_streams: turn.max_allocations,
        max_streams_per_ip: turn.max_allocations_per_ip,
        first_frame_timeout: FIRST_FRAME_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
    };
    Ok(Some(sfu_turn::start(shell).await?))
}

/// The servers clients are offered: the embedded one (if running) first.
pub fn ice_servers(config: &Config, embedded: Option<&RunningTurn>) -> IceServers {
    let urls = embedded
        .map(|t| {
            let announce = config.announce_ip().unwrap_or(config.bind);
            let port = |a: Option<SocketAddr>| a.map(|a| a.port());
            embedded_urls(config.turn.host.as_deref(), announce, port(t.udp), port(t.tcp), port(t.tls))
        })
        .unwrap_or_default();
    IceServers::new(config, urls)
}
