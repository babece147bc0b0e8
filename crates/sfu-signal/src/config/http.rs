//! `[http]`: the HTTP server's settings (CORS, the web client's directory, timeouts and
//! connection caps).

use serde::Deserialize;

use super::string_list;

/// HTTP settings.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins (`scheme://host[:port]`) whose pages may call the WHIP/WHEP endpoints from a
    /// browser (CORS), or `"*"` for any. Default `["*"]`: the endpoints are authorised by bearer
    /// tokens, never by cookies, so a page on another origin can do no more than the tokens it
    /// holds allow. An empty list sends no CORS headers (same-origin pages only). From the
    /// environment: a comma-separated list.
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    /// Serve the web client (index.html, app.js, sdk.js, sdk/*.js, style.css) from this
    /// directory instead of the copy compiled into the binary: edit the SDK, reload the page.
    /// Default: none (the compiled-in copy).
    pub web_dir: Option<std::path::PathBuf>,
    /// Seconds a client has to send a complete request head (request line and headers), on a
    /// new connection and between the requests of a kept-alive one; then the connection is
    /// closed. 1 to 3600. Default 10.
    pub header_read_timeout_secs: u64,
    /// Open HTTP connections (WebSockets included) the server accepts at once; one past it is
    /// answered 503 and closed. 0 = derived from the open-file limit: 90 % of it, at most
    /// [`DEFAULT_MAX_CONNECTIONS`]. Default 0.
    pub max_connections: usize,
    /// Open HTTP connections (WebSockets included) one client address may hold; one past it is
    /// answered 503 and closed. IPv6 clients are counted per /64 network, which a single host
    /// usually has to itself. 0 = no per-address cap. Default 256.
    pub max_connections_per_ip: usize,
    /// Whether clients on loopback addresses are exempt from `max_connections_per_ip`: behind a
    /// reverse proxy on the same host every client has the proxy's address, and load tests run
    /// from the server's host. Default true.
    pub per_ip_exempt_loopback: bool,
}

/// Ceiling of the derived `http.max_connections`: a busy server holds one connection per
/// participant, and a bound on idle connections keeps their memory bounded too.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Why `origin` cannot be an entry of `http.cors_origins`, if it cannot. Browsers send
/// `scheme://host[:port]` exactly, so a path or a trailing slash would never match.
pub(super) fn cors_origin_problem(origin: &str) -> Option<&'static str> {
    if origin == "*" {
        return None;
    }
    let Some((scheme, rest)) = origin.split_once("://") else { return Some("must be scheme://host[:port] or \"*\"") };
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Some("has an invalid scheme");
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ', ',']) {
        return Some("must not have a path, a trailing slash, a wildcard or spaces");
    }
    None
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_origins: vec!["*".to_owned()],
            web_dir: None,
            header_read_timeout_secs: 10,
            max_connections: 0,
            max_connections_per_ip: 256,
            per_ip_exempt_loopback: true,
        }
    }
}
