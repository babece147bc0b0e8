//! How WHIP/WHEP answer what `[limits]` refuses: 413 for a request too large (its body, or the
//! sections, tracks or candidates it carries), 503 for a full room or node, 408 for a body that
//! takes too long to arrive. The body is JSON,
//! `{"error": code, "message": text}`, so a client can tell the limits apart; other WHIP/WHEP
//! errors stay plain text.

// Handlers return `Result<_, Response>`: an early HTTP error is the natural error type here.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sfu_proto::ErrorCode;

use crate::bearer::error;
use crate::room::{Limit, RequestError};

/// The `error` of a body over `limits.whip_body_bytes` (signaling closes with 1009 instead, so
/// it has no [`ErrorCode`]).
pub const BODY_TOO_LARGE: &str = "body_too_large";

fn json(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The status a refusal by a limit is answered with; `None` for any other error.
pub fn limit_status(code: ErrorCode) -> Option<StatusCode> {
    match code {
        ErrorCode::RoomFull | ErrorCode::NodeFull | ErrorCode::Draining => Some(StatusCode::SERVICE_UNAVAILABLE),
        ErrorCode::TooManyTracks | ErrorCode::TooManySections | ErrorCode::TooManyCandidates => {
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        }
        _ => None,
    }
}

/// A limit's refusal as JSON with its status; any other error as `otherwise` with its text.
pub fn answer(e: RequestError, otherwise: StatusCode) -> Response {
    match limit_status(e.code) {
        Some(status) => json(status, e.code.name(), &e.message),
        None => error(otherwise, e.message),
    }
}

/// The `error` of a body that did not arrive within [`BODY_READ_TIMEOUT`].
pub const BODY_TIMEOUT: &str = "body_timeout";

/// The whole body must arrive within this, so a client trickling it a byte at a time cannot hold
/// a connection (and its slot under the connection caps) open for long. An offer is a few KB.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How much of a refused body is still read (and dropped): its client then reads the 413 rather
/// than a reset connection (closing a socket with unread data resets it). Past this the
/// connection is cut.
const DRAIN_BYTES: u64 = 1 << 20;

/// Reads a WHIP/WHEP body of at most `limit` bytes; 413 when it is longer, 400 when it is not
/// UTF-8. A declared length past what is worth draining is refused before anything is read.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<String, Response> {
    let limit = limit as u64;
    let too_large = || {
        Limit::WhipBodyBytes.count_refusal();
        json(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE, &format!("the body is over {limit} bytes"))
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit && length > DRAIN_BYTES) {
        return Err(too_large());
    }
    let (mut bytes, mut seen) = (Vec::new(), 0u64);
    let mut stream = body.into_data_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
            seen += chunk.len() as u64;
            if seen <= limit {
                bytes.extend_from_slice(&chunk);
            } else if seen > DRAIN_BYTES {
                break;
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(result) => result?,
        Err(_) => {
            metrics::counter!("sfu_http_body_timeouts_total").increment(1);
            let secs = BODY_READ_TIMEOUT.as_secs();
            return Err(json(StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT, &format!("the body took over {secs} s")));
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| error(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(headers: &HeaderMap, text: &str, limit: usize) -> Result<String, (StatusCode, String)> {
        match read_body(headers, Body::from(text.to_owned()), limit).await {
            Ok(text) => Ok(text),
            Err(response) => {
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
                Err((status, String::from_utf8(body.to_vec()).unwrap()))
            }
        }
    }

    #[tokio::test]
    async fn bodies_over_the_limit_get_413_with_json() {
        let none = HeaderMap::new();
        assert_eq!(read(&none, "v=0\r\n", 5).await.unwrap(), "v=0\r\n");
        let (status, body) = read(&none, "v=0\r\n!", 5).await.unwrap_err();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], BODY_TOO_LARGE);

        // A declared length past what is worth draining is refused before anything is read.
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "2000000".parse().unwrap());
        assert_eq!(read(&declared, "", 5).await.unwrap_err().0, StatusCode::PAYLOAD_TOO_LARGE);
        let big = "x".repeat(3 << 20);
        assert_eq!(read(&none, &big, 1024).await.unwrap_err().0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_trickled_past_the_timeout_gets_408_with_json() {
        // One byte, then nothing more: a client holding the request open.
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"v"))]);
        let stalled = first.chain(futures_util::stream::pending());
        let started = tokio::time::Instant::now();
        let response = read_body(&HeaderMap::new(), Body::from_stream(stalled), 1024).await.unwrap_err();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], BODY_TIMEOUT);
    }

    #[test]
    fn limits_map_to_413_or_503_and_other_errors_keep_theirs() {
        let status = |code| answer(RequestError::new(code, "x"), StatusCode::BAD_REQUEST).status();
        assert_eq!(status(ErrorCode::RoomFull), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(ErrorCode::NodeFull), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(ErrorCode::TooManyTracks), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status(ErrorCode::TooManySections), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status(ErrorCode::TooManyCandidates), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status(ErrorCode::BadSdp), StatusCode::BAD_REQUEST);
        let response = answer(RequestError::new(ErrorCode::BadSdp, "x"), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    }
}
