//! What every WHIP/WHEP handler does first: check the bearer token against the room in the URL,
//! and answer failures as plain text with the right status.

// Handlers return `Result<_, Response>`: an early HTTP error is the natural error type here.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::SystemTime;

use crate::auth::{Claims, unix_time};
use crate::state::AppState;

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], message.into()).into_response()
}

/// The bearer token's claims, checked against the room in the URL.
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap, room: &str) -> Result<Claims, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
    let claims = state
        .auth
        .verify(token.trim(), unix_time(SystemTime::now()))
        .map_err(|e| error(StatusCode::UNAUTHORIZED, format!("{}: {e}", e.code())))?;
    if claims.room != room {
        return Err(error(StatusCode::FORBIDDEN, "token is for another room"));
    }
    Ok(claims)
}
