//! HTTP and WebSocket front of the SFU: signaling at `/rtc`, WHIP/WHEP, `/metrics`, `/healthz`,
//! the dev token endpoint and the static web client.

pub mod auth;
mod bearer;
pub mod config;
mod cors;
mod data_relay;
mod handlers;
mod http;
mod media_events;
mod refusal;
pub mod room;
mod session;
mod state;
mod trickle;
mod whip;
mod whip_options;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use sfu_transport::{MediaConfig, MediaPlane};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::auth::TokenAuthority;
use crate::config::Config;
use crate::room::Hub;
use crate::state::AppState;

/// Starts the media shards and serves HTTP until Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new().install_recorder().context("installing metrics recorder")?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let media = MediaPlane::start(
        &MediaConfig {
            bind: config.bind,
            announce: config.announce_ip(),
            udp_port_start: config.rtc.udp_port_start,
            shards: config.rtc.shards,
            bandwidth_estimation: config.rtc.bandwidth_estimation,
            dynacast: config.rtc.dynacast,
        },
        events_tx,
    )
    .context("starting media shards")?;
    let hub = Hub::new(media, config.departure_timeout(), config.limits.clone());
    tokio::spawn(media_events::run(hub.clone(), events_rx));
    let addr = config.http_addr();
    let state = Arc::new(AppState { auth: TokenAuthority::from_config(&config.auth), hub, metrics, config });
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "signaling listening (http://{addr}/)");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("http server")
}
