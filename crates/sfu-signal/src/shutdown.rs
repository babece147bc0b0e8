//! What SIGTERM (or Ctrl-C) does: the node drains, so calls can end before it exits. It turns
//! unready (`/readyz` 503), refuses new sessions (`draining`), keeps serving the ones it has
//! until they end or `cluster.drain_timeout_secs` passes, then closes them itself (1001
//! `going_away`) and stops. A second signal ends the process at once.

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// How often the drain looks whether every session has ended.
const EMPTY_POLL: Duration = Duration::from_millis(200);
/// Time for the close frames to leave before the process ends.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Resolves when the process is asked to stop: SIGTERM, or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Waits for a stop signal, then drains; resolves when the HTTP server should stop.
pub async fn drain_on_signal(state: Arc<AppState>) {
    stop_signal().await;
    let timeout = state.config.drain_timeout();
    tracing::info!(drain_timeout_secs = timeout.as_secs(), "stop signal: draining");
    state.hub.begin_drain();
    let until_empty = async {
        while state.hub.member_count() > 0 {
            tokio::time::sleep(EMPTY_POLL).await;
        }
    };
    tokio::select! {
        ended = tokio::time::timeout(timeout, until_empty) => {
            if ended.is_ok() {
                tracing::info!("every session ended: stopping");
            }
        }
        _ = stop_signal() => {
            tracing::warn!("second stop signal: exiting now");
            std::process::exit(1);
        }
    }
    // In a cluster, the sessions left move to another node (the SDK joins there and publishes
    // again); alone, they are told the server is going away.
    let elsewhere = crate::redirect::target(&state, 0).map(|n| crate::redirect::websocket_url(&n.signal_url));
    let closed = state.hub.close_everyone(elsewhere.as_deref()).await;
    if closed > 0 {
        tracing::info!(closed, "drain timeout: closed the remaining sessions");
        tokio::time::sleep(CLOSE_FLUSH).await;
    }
    // Gone from the registry now rather than when its key expires.
    sfu_cluster::Cluster::unregister(&state.hub.cluster).await;
}
