//! The tokio shell around [`TurnCore`]: the listeners (UDP, TCP, TLS), one relay socket per
//! allocation, and the clock. One driver task owns the core; connection and relay-socket tasks
//! hand it what they read through one bounded queue.

mod driver;
mod inputs;
mod relay_sockets;
mod streams;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::server::{CoreConfig, Transport, TurnCore, WallClock};
use crate::stats::TurnStats;

/// Inputs waiting for the driver, from connections and relay sockets together. Past it, relay
/// datagrams are dropped (counted) and connections wait.
const INPUT_QUEUE: usize = 4096;

/// Where and how the embedded server listens.
#[derive(Clone, Debug)]
pub struct ShellConfig {
    /// The core's settings (realm, secret, media addresses, bounds).
    pub core: CoreConfig,
    /// Address the listeners and relay sockets bind to.
    pub bind: IpAddr,
    /// UDP listener port (`Some(0)`: any free port; `None`: no UDP listener).
    pub udp_port: Option<u16>,
    /// TCP listener port, likewise.
    pub tcp_port: Option<u16>,
    /// TLS listener, when a certificate is given.
    pub tls: Option<TlsSettings>,
    /// Ports relay sockets are bound in (`0..=0`: any free port).
    pub relay_ports: RangeInclusive<u16>,
    /// TCP and TLS connections open at once (more are closed at accept).
    pub max_streams: usize,
    /// TCP and TLS connections from one IP at once.
    pub max_streams_per_ip: usize,
    /// A connection whose TLS handshake or first frame takes longer is closed: sockets that
    /// never speak TURN do not hold a slot.
    pub first_frame_timeout: Duration,
    /// A connection silent this long is closed (a client with an allocation sends consent
    /// checks every few seconds).
    pub idle_timeout: Duration,
}

/// TURN over TLS.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Listener port (`0`: any free port).
    pub port: u16,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("binding the TURN {what} listener on {addr}: {source}")]
    Bind {
        /// `udp`, `tcp` or `tls`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's answer.
        source: std::io::Error,
    },
    /// The certificate or key could not be read or used.
    #[error("TURN TLS: {0}")]
    Tls(String),
    /// The STUN crypto provider is missing.
    #[error("TURN: no crypto provider: {0}")]
    Crypto(String),
}

/// A running embedded server; dropping it stops every task.
pub struct RunningTurn {
    /// The UDP listener's address.
    pub udp: Option<SocketAddr>,
    /// The TCP listener's address.
    pub tcp: Option<SocketAddr>,
    /// The TLS listener's address.
    pub tls: Option<SocketAddr>,
    stats: Arc<parking_lot::Mutex<TurnStats>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningTurn {
    /// The core's counters as of its last input.
    pub fn stats(&self) -> TurnStats {
        self.stats.lock().clone()
    }
}

impl Drop for RunningTurn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds the listeners and starts the server's tasks on the current tokio runtime.
pub async fn start(config: ShellConfig) -> Result<RunningTurn, StartError> {
    let bind = |port: u16| SocketAddr::new(config.bind, port);
    let udp = match config.udp_port {
        Some(port) => Some(UdpSocket::bind(bind(port)).await.map_err(|source| StartError::Bind {
            what: "udp",
            addr: bind(port),
            source,
        })?),
        None => None,
    };
    let tcp = match config.tcp_port {
        Some(port) => Some(TcpListener::bind(bind(port)).await.map_err(|source| StartError::Bind {
            what: "tcp",
            addr: bind(port),
            source,
        })?),
        None => None,
    };
    let tls = match &config.tls {
        Some(t) => {
            let acceptor = tls::acceptor(&t.cert_file, &t.key_file)?;
            let listener = TcpListener::bind(bind(t.port)).await.map_err(|source| StartError::Bind {
                what: "tls",
                addr: bind(t.port),
                source,
            })?;
            Some((listener, acceptor))
        }
        None => None,
    };
    let wall = WallClock {
        at: Instant::now(),
        unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    let core = TurnCore::new(config.core.clone(), wall).map_err(|e| StartError::Crypto(e.to_string()))?;
    let stats = Arc::new(parking_lot::Mutex::new(TurnStats::default()));
    let counters = Arc::new(inputs::ShellCounters::default());
    let (inputs_tx, inputs_rx) = mpsc::channel(INPUT_QUEUE);
    let mut running = RunningTurn {
        udp: udp.as_ref().and_then(|s| s.local_addr().ok()),
        tcp: tcp.as_ref().and_then(|s| s.local_addr().ok()),
        tls: tls.as_ref().and_then(|(s, _)| s.local_addr().ok()),
        stats: stats.clone(),
        tasks: Vec::new(),
    };
    let slots = streams::Slots::new(config.max_streams, config.max_streams_per_ip);
    let stream_limits = streams::StreamLimits { first_frame: config.first_frame_timeout, idle: config.idle_timeout };
    if let Some(listener) = tcp {
        let accept = streams::Acceptor { transport: Transport::Tcp, tls: None, limits: stream_limits };
        let task = streams::accept_loop(listener, accept, inputs_tx.clone(), slots.clone(), counters.clone());
        running.tasks.push(tokio::spawn(task));
    }
    if let Some((listener, acceptor)) = tls {
        let accept = streams::Acceptor { transport: Transport::Tls, tls: Some(acceptor), limits: stream_limits };
        let task = streams::accept_loop(listener, accept, inputs_tx.clone(), slots, counters.clone());
        running.tasks.push(tokio::spawn(task));
    }
    let driver = driver::Driver::new(core, udp, &config, inputs_tx, inputs_rx, stats, counters);
    running.tasks.push(tokio::spawn(driver.run()));
    tracing::info!(udp = ?running.udp, tcp = ?running.tcp, tls = ?running.tls, "embedded TURN listening");
    Ok(running)
}
