//! What a WHIP/WHEP client can learn before and after it posts: `OPTIONS` on the endpoints
//! (RFC 9725 section 4.1) and the ICE servers it may use, as `Link` headers (section 4.6).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use sfu_proto::IceServerInfo;

use crate::state::AppState;

/// The media type of a trickle ICE / ICE restart PATCH body (RFC 8840).
pub const TRICKLE_SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// One `Link` value per STUN/TURN URL.
pub fn ice_server_links(servers: &[IceServerInfo]) -> Vec<HeaderValue> {
    servers
        .iter()
        .flat_map(|s| s.urls.iter().map(move |url| (url, s)))
        .filter_map(|(url, s)| {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(user), Some(credential)) = (&s.username, &s.credential) {
                link.push_str(&format!(
                    "; username=\"{user}\"; credential=\"{credential}\"; credential-type=\"password\""
                ));
            }
            // Config validation and the minted usernames keep out what a header cannot carry;
            // skip rather than panic.
            HeaderValue::from_str(&link).ok()
        })
        .collect()
}

/// Appends the `Link` headers of `servers`.
pub fn add_ice_links(headers: &mut HeaderMap, servers: &[IceServerInfo]) {
    for link in ice_server_links(servers) {
        headers.append(header::LINK, link);
    }
}

/// The configured servers that need no minted credential (`rtc.ice_servers`): all that an
/// unauthenticated request is told.
fn configured_servers(state: &AppState) -> Vec<IceServerInfo> {
    let configured = &state.config.rtc.ice_servers;
    configured
        .iter()
        .map(|s| IceServerInfo {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect()
}

/// `OPTIONS /whip/{room}` and `OPTIONS /whep/{room}/{identity}` that are not CORS preflights
/// (those are answered by the CORS layer, without ICE servers as the RFC advises).
pub async fn endpoint(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    headers.insert("accept-post", HeaderValue::from_static("application/sdp"));
    add_ice_links(&mut headers, &configured_servers(&state));
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// `OPTIONS` on a session's URL: what it accepts.
pub async fn session() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ALLOW, HeaderValue::from_static("OPTIONS, PATCH, DELETE"));
    headers.insert("accept-patch", HeaderValue::from_static(TRICKLE_SDPFRAG));
    (StatusCode::NO_CONTENT, headers).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_each_server_and_turn_credentials() {
        let servers = vec![
            IceServerInfo { urls: vec!["stun:stun.example.org:3478".into()], username: None, credential: None },
            IceServerInfo {
                urls: vec!["turn:turn.example.org:3478?transport=udp".into(), "turns:turn.example.org:443".into()],
                username: Some("u1".into()),
                credential: Some("p1".into()),
            },
        ];
        let links: Vec<String> = ice_server_links(&servers).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(
            links,
            [
                r#"<stun:stun.example.org:3478>; rel="ice-server""#,
                r#"<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="u1"; credential="p1"; credential-type="password""#,
                r#"<turns:turn.example.org:443>; rel="ice-server"; username="u1"; credential="p1"; credential-type="password""#,
            ]
        );
        assert!(ice_server_links(&[]).is_empty());
    }
}
