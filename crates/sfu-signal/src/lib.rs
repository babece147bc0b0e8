//! HTTP and WebSocket front of the SFU: signaling at `/rtc`, WHIP/WHEP, `/metrics`, `/healthz`,
//! the dev token endpoint and the static web client.

pub mod auth;
mod bearer;
mod cluster_events;
mod cluster_setup;
pub mod config;
mod connections;
mod cors;
mod data_envelope;
mod data_relay;
mod fd_limit;
mod handlers;
mod http;
mod ice_servers;
mod load_report;
mod media_events;
mod redirect;
mod refusal;
pub mod room;
mod session;
mod shutdown;
mod state;
mod trickle;
mod turn_setup;
mod whip;
mod whip_options;

/// For the fuzz targets (crates/sfu-fuzz): how a WHIP PATCH body is read.
#[doc(hidden)]
pub use trickle::fragment_candidates;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sfu_transport::{MediaConfig, MediaPlane};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::auth::TokenAuthority;
use crate::config::Config;
use crate::room::Hub;
use crate::state::AppState;

/// Starts the media shards and serves HTTP until SIGTERM or Ctrl-C, then drains (see
/// `shutdown`): no new sessions, the others served until they end or the drain timeout.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    let state = server.state.clone();
    server.run(shutdown::drain_on_signal(state)).await
}

/// A server whose media shards run and whose HTTP listener is bound, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    caps: connections::Caps,
    /// The embedded TURN server (`turn.enabled`), stopped when the server is dropped.
    turn: Option<sfu_turn::RunningTurn>,
}

impl Server {
    /// Starts the media shards and binds the HTTP listener (`http_port = 0` picks a free port:
    /// see [`Server::local_addr`]).
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let caps = connection_caps(&config, fd_limit::raise());
        let metrics = metrics_handle()?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let media = MediaPlane::start(
            &MediaConfig {
                bind: config.bind,
                announce: config.announce_ip(),
                udp_port_start: config.rtc.udp_port_start,
                tcp_port: config.rtc.tcp_port,
                shards: config.rtc.shards,
                bandwidth_estimation: config.rtc.bandwidth_estimation,
                dynacast: config.rtc.dynacast,
            },
            events_tx,
        )
        .context("starting media shards")?;
        let cluster = cluster_setup::start(&config, &media.relay_endpoints()).context("starting cluster membership")?;
        let turn = turn_setup::start(&config, &media).await.context("starting the embedded TURN server")?;
        let hub = Hub::new(
            media,
            cluster,
            config.departure_timeout(),
            config.limits.clone(),
            config.audio.clone(),
            config.rooms.clone(),
        );
        hub.set_ice_servers(turn_setup::ice_servers(&config, turn.as_ref()));
        tokio::spawn(media_events::run(hub.clone(), events_rx));
        if let Some(cluster_events) = sfu_cluster::Cluster::take_events(&hub.cluster) {
            tokio::spawn(cluster_events::run(hub.clone(), cluster_events));
            tokio::spawn(load_report::run(hub.clone()));
        }
        let addr = config.http_addr();
        let state = Arc::new(AppState { auth: TokenAuthority::from_config(&config.auth), hub, metrics, config });
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        Ok(Server { listener, state, caps, turn })
    }

    /// The address the HTTP listener is bound to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.state.config.http_addr())
    }

    /// Serves HTTP until `shutdown` resolves, then stops accepting and waits for the requests in
    /// flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "signaling listening (http://{addr}/)");
        let header_read_timeout = self.state.config.header_read_timeout();
        let slots = connections::Slots::new(self.caps);
        let _turn = self.turn;
        connections::serve(self.listener, http::router(self.state), slots, header_read_timeout, shutdown).await;
        Ok(())
    }
}

/// The connection caps from the config, the global one derived from the open-file limit unless
/// it is configured (then a cap the limit cannot honour is warned about).
fn connection_caps(config: &Config, nofile: Option<u64>) -> connections::Caps {
    // Unknown limit: assume the common default.
    let soft = nofile.unwrap_or(1024);
    let total = config.max_connections(soft);
    if config.http.max_connections != 0 && total as u64 > soft / 10 * 9 {
        tracing::warn!(
            max_connections = total,
            open_file_limit = soft,
            "http.max_connections is close to or over the open-file limit: past it, connections \
             fail to be accepted instead of being refused with 503"
        );
    }
    let caps = connections::Caps {
        total,
        per_ip: config.http.max_connections_per_ip,
        exempt_loopback: config.http.per_ip_exempt_loopback,
    };
    tracing::info!(
        max_connections = caps.total,
        max_connections_per_ip = caps.per_ip,
        per_ip_exempt_loopback = caps.exempt_loopback,
        header_read_timeout_secs = config.http.header_read_timeout_secs,
        "http connection limits"
    );
    caps
}

/// The Prometheus recorder, installed once per process (a test may start several servers).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: parking_lot::Mutex<Option<PrometheusHandle>> = parking_lot::Mutex::new(None);
    let mut handle = HANDLE.lock();
    if handle.is_none() {
        *handle = Some(PrometheusBuilder::new().install_recorder().context("installing metrics recorder")?);
    }
    Ok(handle.clone().expect("installed above"))
}
