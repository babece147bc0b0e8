//! WHIP (RFC 9725) publishing and WHEP playback: one HTTP POST with an SDP offer, answered with
//! 201, the SDP answer and a Location to DELETE when done.

// Handlers return `Result<_, Response>`: an early HTTP error is the natural error type here.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sfu_proto::{Escaped, Identity, LayerPreference, LeaveReason, ParticipantId, RoomId, SubscriptionSettings};
use sfu_transport::DownTrackSpec;
use std::sync::Arc;

use crate::bearer::{authorize, error};
use crate::refusal::{answer, read_body};
use crate::room::{ParticipantKind, Viewer, new_id};
use crate::state::AppState;
use crate::trickle;
use crate::whip_options::{TRICKLE_SDPFRAG, add_ice_links};

fn require_sdp(headers: &HeaderMap) -> Result<(), Response> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if is_sdp { Ok(()) } else { Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content type must be application/sdp")) }
}

/// A URL path segment: room names and identities may hold any character, a header only ASCII.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `201 Created` with the answer, the session's URL and what a client needs for trickle ICE.
/// `location` is built from [`segment`]s and `session` is a generated id: both are valid header
/// values.
/// `identity` is the token's: the TURN credentials in the `Link` headers are minted for it.
fn created(state: &AppState, location: String, session: &str, sdp: String, identity: &str) -> Response {
    let mut headers = HeaderMap::new();
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    headers.insert(header::LOCATION, value(&location));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    headers.insert(header::ETAG, value(&trickle::etag(session)));
    headers.insert("accept-patch", HeaderValue::from_static(TRICKLE_SDPFRAG));
    add_ice_links(&mut headers, &state.hub.ice_servers_for(identity));
    (StatusCode::CREATED, headers, sdp).into_response()
}

/// `307 Temporary Redirect` to the same resource on another node, when this one is draining or
/// full and another serves (RFC 9725 allows it for WHIP; 307 keeps the method and the body).
fn redirect_to(state: &Arc<AppState>, path: &str, via: &'static str) -> Option<Response> {
    let target = crate::redirect::target(state, 0)?;
    crate::redirect::count(via);
    let location = format!("{}{path}", target.signal_url.trim_end_matches('/'));
    let location = HeaderValue::from_str(&location).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location);
    Some((StatusCode::TEMPORARY_REDIRECT, headers).into_response())
}

pub async fn whip_post(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let claims = match authorize(&state, &headers, &room).and_then(|c| require_sdp(&headers).map(|_| c)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !claims.grants.publish {
        return error(StatusCode::FORBIDDEN, "token does not grant publish");
    }
    if let Some(elsewhere) = redirect_to(&state, &format!("/whip/{}", segment(&room)), "whip") {
        return elsewhere;
    }
    let body = match read_body(&headers, body, state.config.limits.whip_body_bytes).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    // Checked before joining too, so a refused offer neither shows in the room nor replaces a
    // session with the same identity.
    if let Err(refused) = state.hub.check_publisher_offer(&body) {
        return answer(refused, StatusCode::BAD_REQUEST);
    }
    let room_id = RoomId(room.clone());
    let joined = state.hub.join(&room_id, Identity(claims.sub.clone()), claims.grants, ParticipantKind::Whip, None);
    let (room_ref, id) = match joined.await {
        Ok(joined) => joined,
        Err(refused) => return answer(refused, StatusCode::SERVICE_UNAVAILABLE),
    };
    let mut guard = room_ref.lock().await;
    match state.hub.publisher_offer(&mut guard, &id, body, Vec::new()).await {
        Ok(sdp) => created(&state, format!("/whip/{}/{id}", segment(&room)), &id.0, sdp, &claims.sub),
        Err(e) => {
            state.hub.remove_participant(&mut guard, &id, LeaveReason::Left).await;
            answer(e, StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn whip_delete(
    State(state): State<Arc<AppState>>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let claims = match authorize(&state, &headers, &room) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(room_ref) = state.hub.room(&RoomId(room)) else { return error(StatusCode::NOT_FOUND, "no such room") };
    let mut guard = room_ref.lock().await;
    let id = ParticipantId(participant);
    match guard.participants.get(&id) {
        Some(p) if p.identity.as_str() == claims.sub => {}
        Some(_) => return error(StatusCode::FORBIDDEN, "not your session"),
        None => return error(StatusCode::NOT_FOUND, "no such session"),
    }
    state.hub.remove_participant(&mut guard, &id, LeaveReason::Left).await;
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
pub struct WhepQuery {
    #[serde(default)]
    layer: LayerPreference,
}

pub async fn whep_post(
    State(state): State<Arc<AppState>>,
    Path((room, identity)): Path<(String, String)>,
    Query(query): Query<WhepQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let claims = match authorize(&state, &headers, &room).and_then(|c| require_sdp(&headers).map(|_| c)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !claims.grants.subscribe {
        return error(StatusCode::FORBIDDEN, "token does not grant subscribe");
    }
    let mut path = format!("/whep/{}/{}", segment(&room), segment(&identity));
    if query.layer != LayerPreference::default()
        && let Ok(serde_json::Value::String(layer)) = serde_json::to_value(query.layer)
    {
        path.push_str(&format!("?layer={layer}"));
    }
    if let Some(elsewhere) = redirect_to(&state, &path, "whep") {
        return elsewhere;
    }
    let body = match read_body(&headers, body, state.config.limits.whip_body_bytes).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    let Some(room_ref) = state.hub.room(&RoomId(room.clone())) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    let mut guard = room_ref.lock().await;
    let Some(publisher) = guard.by_identity(&identity) else {
        return error(StatusCode::NOT_FOUND, format!("{identity} is not in {room}"));
    };
    // Checked before the media plane sees the offer; the place is given back if it fails.
    if let Err(refused) = state.hub.check_sections(&body).and_then(|_| state.hub.take_place(&guard, false)) {
        return answer(refused, StatusCode::BAD_REQUEST);
    }
    let specs: Vec<DownTrackSpec> = publisher
        .tracks
        .iter()
        .map(|t| DownTrackSpec {
            key: t.key,
            track_id: t.info.id.clone(),
            publisher: publisher.id.clone(),
            kind: t.info.kind,
            mime: t.mime.clone(),
            clock_rate: t.clock_rate,
            layers: t.info.layers.clone(),
            settings: SubscriptionSettings {
                track_id: t.info.id.clone(),
                layer: query.layer,
                max_width: None,
                max_height: None,
                paused: false,
            },
            muted: t.info.muted,
            // A viewer of one participant hears it whatever its room's top-N.
            among_loudest: true,
            source: t.info.source,
        })
        .collect();
    let session = new_id("WV");
    let conn = state.hub.media.allocate_conn();
    match state.hub.media.egress_offer(conn, ParticipantId(session.clone()), body, specs).await {
        Ok(sdp) => {
            let viewer = Viewer { conn, identity: Identity(identity.clone()), trickled: 0 };
            state.hub.add_viewer(&mut guard, session.clone(), viewer);
            tracing::info!(room = %Escaped(&room), identity = %Escaped(&identity), viewer = %session, layer = ?query.layer, "whep session started");
            let location = format!("/whep/{}/{}/{session}", segment(&room), segment(&identity));
            created(&state, location, &session, sdp, &claims.sub)
        }
        Err(e) => {
            state.hub.media.close(conn);
            state.hub.give_back_place();
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

pub async fn whep_delete(
    State(state): State<Arc<AppState>>,
    Path((room, _identity, session)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &room) {
        return r;
    }
    let Some(room_ref) = state.hub.room(&RoomId(room)) else { return error(StatusCode::NOT_FOUND, "no such room") };
    let mut guard = room_ref.lock().await;
    if state.hub.remove_viewer(&mut guard, &session) {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such session")
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn location_segments_are_percent_encoded() {
        let cases = [("standup", "standup"), ("a b/c", "a%20b%2Fc"), ("café", "caf%C3%A9"), ("x~y-z_1.2", "x~y-z_1.2")];
        for (raw, encoded) in cases {
            assert_eq!(segment(raw), encoded, "{raw}");
        }
    }
}
