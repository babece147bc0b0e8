//! Trickle ICE over HTTP PATCH on a WHIP/WHEP session (RFC 9725 section 4.3, RFC 8840
//! fragments). The server is ICE-lite, so a client's candidates only confirm what its
//! connectivity checks show anyway; they are handed to the media plane all the same. ICE
//! restarts are not supported: the server's ICE credentials are fixed for a session's life, and
//! a client that lost its path starts a new session (422, as the RFC asks of a server that
//! supports trickle but not restarts).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu_proto::{IceCandidate, ParticipantId, RoomId};
use sfu_transport::ConnId;
use std::sync::Arc;

use crate::bearer::{authorize, error};
use crate::refusal::{answer, read_body};
use crate::state::AppState;
use crate::whip_options::TRICKLE_SDPFRAG;

/// The entity tag of a session: its ICE credentials never change, so neither does the tag.
pub fn etag(session: &str) -> String {
    format!("\"{session}\"")
}

/// The candidates of an SDP fragment, each with the mid and index of the media section it
/// follows (the first section when the fragment has none: everything is bundled).
pub fn fragment_candidates(fragment: &str) -> Vec<IceCandidate> {
    let mut out = Vec::new();
    let mut index: Option<u16> = None;
    let mut mid: Option<String> = None;
    for line in fragment.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            index = Some(index.map_or(0, |i| i.saturating_add(1)));
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(c) = line.strip_prefix("a=").filter(|c| c.starts_with("candidate:")) {
            out.push(IceCandidate {
                candidate: c.to_owned(),
                sdp_mid: mid.clone(),
                sdp_m_line_index: Some(index.unwrap_or(0)),
                username_fragment: None,
            });
        }
    }
    out
}

/// What a PATCH asks for, judged from its headers alone.
#[derive(Debug, PartialEq, Eq)]
pub enum PatchKind {
    Trickle,
    /// `If-Match: *` marks an ICE restart (RFC 9725 section 4.3.2).
    Restart,
    /// The client's tag is not this session's: it is talking about another state.
    Stale,
}

pub fn classify(if_match: Option<&str>, etag: &str) -> PatchKind {
    match if_match.map(str::trim) {
        Some("*") => PatchKind::Restart,
        // A missing If-Match is taken as trickle: some clients leave it out.
        None => PatchKind::Trickle,
        Some(tags) if tags.split(',').any(|t| t.trim().trim_start_matches("W/") == etag) => PatchKind::Trickle,
        Some(_) => PatchKind::Stale,
    }
}

/// The candidates of a trickle PATCH, or why it is refused, judged from its headers and body.
// An early HTTP error is the natural error type of a handler's helper.
#[allow(clippy::result_large_err)]
fn trickled_candidates(session: &str, headers: &HeaderMap, body: &str) -> Result<Vec<IceCandidate>, Response> {
    let is_fragment =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(TRICKLE_SDPFRAG));
    if !is_fragment {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content type must be {TRICKLE_SDPFRAG}")));
    }
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match classify(if_match, &etag(session)) {
        PatchKind::Restart => {
            Err(error(StatusCode::UNPROCESSABLE_ENTITY, "ICE restart is not supported: start a new session"))
        }
        PatchKind::Stale => Err(error(StatusCode::PRECONDITION_FAILED, "If-Match does not name this session")),
        PatchKind::Trickle => Ok(fragment_candidates(body)),
    }
}

/// Hands the candidates to the media plane (they were counted against the limit already).
async fn add(state: &AppState, conn: ConnId, session: &str, candidates: Vec<IceCandidate>) -> Response {
    let count = candidates.len();
    for candidate in candidates {
        // A candidate the stack cannot use costs nothing: ICE-lite learns the client's address
        // from its checks.
        if let Err(e) = state.hub.media.add_remote_candidate(conn, candidate).await {
            tracing::debug!(%session, error = %e, "trickled candidate not added");
        }
    }
    tracing::debug!(%session, count, "trickled candidates");
    StatusCode::NO_CONTENT.into_response()
}

/// `PATCH /whip/{room}/{participant}`.
pub async fn whip_patch(
    State(state): State<Arc<AppState>>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let claims = match authorize(&state, &headers, &room) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_body(&headers, body, state.config.limits.whip_body_bytes).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    let Some(room_ref) = state.hub.room(&RoomId(room)) else { return error(StatusCode::NOT_FOUND, "no such room") };
    let (conn, candidates) = {
        let mut guard = room_ref.lock().await;
        let p = match guard.participants.get_mut(&ParticipantId(participant.clone())) {
            Some(p) if p.identity.as_str() == claims.sub => p,
            Some(_) => return error(StatusCode::FORBIDDEN, "not your session"),
            None => return error(StatusCode::NOT_FOUND, "no such session"),
        };
        let candidates = match trickled_candidates(&participant, &headers, &body) {
            Ok(candidates) => candidates,
            Err(r) => return r,
        };
        if let Err(refused) = state.hub.count_candidates(&mut p.trickled.publisher, candidates.len()) {
            return answer(refused, StatusCode::BAD_REQUEST);
        }
        (p.publisher_conn, candidates)
    };
    add(&state, conn, &participant, candidates).await
}

/// `PATCH /whep/{room}/{identity}/{session}`.
pub async fn whep_patch(
    State(state): State<Arc<AppState>>,
    Path((room, _identity, session)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &room) {
        return r;
    }
    let body = match read_body(&headers, body, state.config.limits.whip_body_bytes).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    let Some(room_ref) = state.hub.room(&RoomId(room)) else { return error(StatusCode::NOT_FOUND, "no such room") };
    let (conn, candidates) = {
        let mut guard = room_ref.lock().await;
        let Some(viewer) = guard.viewers.get_mut(&session) else {
            return error(StatusCode::NOT_FOUND, "no such session");
        };
        let candidates = match trickled_candidates(&session, &headers, &body) {
            Ok(candidates) => candidates,
            Err(r) => return r,
        };
        if let Err(refused) = state.hub.count_candidates(&mut viewer.trickled, candidates.len()) {
            return answer(refused, StatusCode::BAD_REQUEST);
        }
        (viewer.conn, candidates)
    };
    add(&state, conn, &session, candidates).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_keep_their_media_section() {
        let fragment = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n\
            a=candidate:2 1 udp 1686052607 198.51.100.2 61665 typ srflx raddr 192.0.2.1 rport 61764\r\n\
            a=end-of-candidates\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            a=candidate:3 1 udp 2122260223 192.0.2.1 61765 typ host\r\n";
        let got = fragment_candidates(fragment);
        let summary: Vec<(&str, Option<&str>, Option<u16>)> =
            got.iter().map(|c| (&c.candidate[..11], c.sdp_mid.as_deref(), c.sdp_m_line_index)).collect();
        assert_eq!(
            summary,
            [
                ("candidate:1", Some("0"), Some(0)),
                ("candidate:2", Some("0"), Some(0)),
                ("candidate:3", Some("1"), Some(1))
            ]
        );
        assert!(got[0].candidate.ends_with("typ host"), "no line end kept: {:?}", got[0].candidate);
    }

    #[test]
    fn fragments_without_candidates_or_sections() {
        assert!(fragment_candidates("a=end-of-candidates\r\n").is_empty());
        assert!(fragment_candidates("").is_empty());
        let bare = fragment_candidates("a=candidate:9 1 udp 1 10.0.0.1 9 typ host\n");
        assert_eq!(bare.len(), 1);
        assert_eq!((bare[0].sdp_mid.as_deref(), bare[0].sdp_m_line_index), (None, Some(0)));
    }

    #[test]
    fn if_match_decides_trickle_restart_or_stale() {
        let tag = etag("PA_x1");
        assert_eq!(tag, "\"PA_x1\"");
        let cases: &[(Option<&str>, PatchKind)] = &[
            (None, PatchKind::Trickle),
            (Some("\"PA_x1\""), PatchKind::Trickle),
            (Some("W/\"PA_x1\""), PatchKind::Trickle),
            (Some("\"other\", \"PA_x1\""), PatchKind::Trickle),
            (Some("*"), PatchKind::Restart),
            (Some("\"PA_x2\""), PatchKind::Stale),
            (Some("PA_x1"), PatchKind::Stale),
        ];
        for (header, want) in cases {
            assert_eq!(&classify(*header, &tag), want, "{header:?}");
        }
    }
}
