//! The HTTP surface: routes, the static web client, health, metrics and the dev token endpoint.

use axum::Router;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::{Grants, unix_time};
use crate::state::AppState;
use crate::{cors, trickle, whip, whip_options};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/rtc", get(rtc))
        .merge(whip_routes(state.clone()))
        // Liveness never depends on anything but the process; readiness says whether to send
        // new clients here (not while draining).
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/dev/token", get(dev_token))
        .route("/", get(|State(state): State<Arc<AppState>>| async move { web_file(&state, "index.html") }))
        .route(
            "/sdk/{file}",
            get(|State(state): State<Arc<AppState>>, axum::extract::Path(file): axum::extract::Path<String>| async move {
                web_file(&state, &format!("sdk/{file}"))
            }),
        )
        .route(
            "/{file}",
            get(|State(state): State<Arc<AppState>>, axum::extract::Path(file): axum::extract::Path<String>| async move {
                web_file(&state, &file)
            }),
        )
        .with_state(state)
}

/// 200 `{"status":"ready"}`; 503 `{"status":"draining"}` once SIGTERM started the drain; in
/// cluster mode with Redis unreachable, 200 `{"status":"degraded","redis":"unreachable"}`: the
/// node still serves (rooms go on, new ones start unverified), and one Redis outage must not
/// empty a load balancer of every node at once.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let degraded = sfu_cluster::Cluster::health(&state.hub.cluster) == sfu_cluster::Health::Degraded;
    let (status, body) = if state.hub.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "status": "draining" }))
    } else if degraded {
        (StatusCode::OK, serde_json::json!({ "status": "degraded", "redis": "unreachable" }))
    } else {
        (StatusCode::OK, serde_json::json!({ "status": "ready" }))
    };
    let body = body.to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// WHIP/WHEP, behind the CORS layer so pages on other origins can use them.
fn whip_routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/whip/{room}", post(whip::whip_post).options(whip_options::endpoint))
        .route(
            "/whip/{room}/{participant}",
            delete(whip::whip_delete).patch(trickle::whip_patch).options(whip_options::session),
        )
        .route("/whep/{room}/{identity}", post(whip::whep_post).options(whip_options::endpoint))
        .route(
            "/whep/{room}/{identity}/{session}",
            delete(whip::whep_delete).patch(trickle::whep_patch).options(whip_options::session),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, cors::layer))
}

/// Bytes a signaling WebSocket reads from its socket at once. The WebSocket library allocates
/// (and fills) its read buffer as the socket opens, 128 KiB unless told otherwise: that was
/// nearly all of the 140 KB an idle socket cost before it joined. Signaling messages are small
/// and few; a large one (an offer) is read in several calls.
const WS_READ_BUFFER_BYTES: usize = 4096;

async fn rtc(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    // The message and frame caps are generous so an oversized message reaches our own check,
    // which closes with 1009 and a reason instead of a bare protocol error. Capping frames too
    // (16 MiB by default) keeps a client from making the server buffer a huge frame, joined
    // or not.
    let cap = state.config.rtc.max_message_bytes.saturating_mul(4).max(1 << 20);
    ws.read_buffer_size(WS_READ_BUFFER_BYTES)
        // Each message is written and flushed as it is sent; nothing waits in a write buffer.
        .write_buffer_size(0)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| crate::session::run(socket, state))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

#[derive(Deserialize)]
struct DevTokenQuery {
    room: String,
    identity: String,
}

/// Mints participant tokens for the demo page. Only in dev mode, which uses well-known keys.
async fn dev_token(State(state): State<Arc<AppState>>, Query(q): Query<DevTokenQuery>) -> Response {
    if !state.config.dev {
        return StatusCode::NOT_FOUND.into_response();
    }
    let token = state.auth.issue(
        &q.room,
        &q.identity,
        Grants::participant(),
        Duration::from_secs(6 * 3600),
        unix_time(SystemTime::now()),
    );
    axum::Json(serde_json::json!({ "token": token })).into_response()
}

/// A file of the web client: from `http.web_dir` when it is set, else the compiled-in copy.
fn web_file(state: &AppState, name: &str) -> Response {
    let Some(dir) = state.config.http.web_dir.as_deref() else { return asset(name) };
    let Some(mime) = servable_from_disk(name) else { return StatusCode::NOT_FOUND.into_response() };
    match std::fs::read(dir.join(name)) {
        Ok(body) => ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The content type of `name` if it may be read from `http.web_dir`: a plain html/js/css file
/// name, at the top or under `sdk/`, so no request reaches outside the directory.
fn servable_from_disk(name: &str) -> Option<&'static str> {
    let plain = |part: &str| {
        !part.starts_with('.') && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let file = match name.split('/').collect::<Vec<_>>().as_slice() {
        [file] | ["sdk", file] if plain(file) => *file,
        _ => return None,
    };
    match file.rsplit_once('.')?.1 {
        "html" => Some("text/html; charset=utf-8"),
        "js" => Some("text/javascript"),
        "css" => Some("text/css"),
        _ => None,
    }
}

/// The web client, compiled into the binary so the server runs from anywhere.
fn asset(name: &str) -> Response {
    let (body, mime) = match name {
        "index.html" => (include_str!("../../../web/index.html"), "text/html; charset=utf-8"),
        "sdk.js" => (include_str!("../../../web/sdk.js"), "text/javascript"),
        "sdk/util.js" => (include_str!("../../../web/sdk/util.js"), "text/javascript"),
        "sdk/adaptive-stream.js" => (include_str!("../../../web/sdk/adaptive-stream.js"), "text/javascript"),
        "sdk/media.js" => (include_str!("../../../web/sdk/media.js"), "text/javascript"),
        "sdk/publisher-layers.js" => (include_str!("../../../web/sdk/publisher-layers.js"), "text/javascript"),
        "sdk/errors.js" => (include_str!("../../../web/sdk/errors.js"), "text/javascript"),
        "sdk/events.js" => (include_str!("../../../web/sdk/events.js"), "text/javascript"),
        "sdk/peer-transport.js" => (include_str!("../../../web/sdk/peer-transport.js"), "text/javascript"),
        "sdk/publisher-transport.js" => (include_str!("../../../web/sdk/publisher-transport.js"), "text/javascript"),
        "sdk/data.js" => (include_str!("../../../web/sdk/data.js"), "text/javascript"),
        "sdk/subscriber-transport.js" => (include_str!("../../../web/sdk/subscriber-transport.js"), "text/javascript"),
        "sdk/subscriptions.js" => (include_str!("../../../web/sdk/subscriptions.js"), "text/javascript"),
        "sdk/room-state.js" => (include_str!("../../../web/sdk/room-state.js"), "text/javascript"),
        "sdk/signal-client.js" => (include_str!("../../../web/sdk/signal-client.js"), "text/javascript"),
        "sdk/recovery.js" => (include_str!("../../../web/sdk/recovery.js"), "text/javascript"),
        "sdk/urls.js" => (include_str!("../../../web/sdk/urls.js"), "text/javascript"),
        "sdk/mesh-transport.js" => (include_str!("../../../web/sdk/mesh-transport.js"), "text/javascript"),
        "sdk/mesh-negotiation.js" => (include_str!("../../../web/sdk/mesh-negotiation.js"), "text/javascript"),
        "sdk/mesh-notes.js" => (include_str!("../../../web/sdk/mesh-notes.js"), "text/javascript"),
        "app.js" => (include_str!("../../../web/app.js"), "text/javascript"),
        "style.css" => (include_str!("../../../web/style.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SDK module on disk is compiled in: a module added to web/sdk/ but not to `asset`
    /// would fail the SDK's import only in the browser.
    #[test]
    fn every_sdk_module_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/sdk");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let response = asset(&format!("sdk/{name}"));
            assert_eq!(response.status(), StatusCode::OK, "web/sdk/{name} is not served");
            count += 1;
        }
        assert!(count >= 4, "only {count} modules found");
        assert_eq!(asset("sdk/nope.js").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn only_plain_web_files_are_read_from_disk() {
        assert_eq!(servable_from_disk("sdk.js"), Some("text/javascript"));
        assert_eq!(servable_from_disk("sdk/signal-client.js"), Some("text/javascript"));
        assert_eq!(servable_from_disk("index.html"), Some("text/html; charset=utf-8"));
        for hostile in
            ["../secret.js", "sdk/../../x.js", "/etc/passwd", "sdk/a/b.js", ".hidden.js", "x.toml", "sdk/", ""]
        {
            assert_eq!(servable_from_disk(hostile), None, "{hostile:?} must not be read");
        }
    }
}
