//! `[rtc]`: the media plane's settings, and the STUN/TURN servers offered to WHIP/WHEP clients.

use serde::Deserialize;

use super::{ListOrCsv, split_csv};

#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    /// UDP port of the first worker shard; shard `i` uses `udp_port_start + i`. 0 = any free
    /// port for every shard. Default 7882.
    pub udp_port_start: u16,
    /// The node's ICE-TCP port (RFC 6544), one for all shards: clients whose UDP is blocked
    /// connect to it, and every connection announces a passive TCP candidate there (priority
    /// below UDP). 0 = off. Default 7881.
    pub tcp_port: u16,
    /// Number of worker shards (one UDP socket each); 0 = one per CPU core. Default 0.
    pub shards: usize,
    /// Seconds a participant whose signaling connection dropped is kept (media routing state
    /// intact) waiting for it to resume before it is removed from the room. Default 20.
    pub departure_timeout_secs: u64,
    /// Largest signaling (WebSocket) message accepted, in bytes. Default 65536.
    pub max_message_bytes: usize,
    /// Subscriber connections negotiate transport-cc and RTX; each gets a send-side bandwidth
    /// estimate, shared among its tracks by the allocator (which picks layers and pauses video
    /// that does not fit). Default on; off forwards whatever layers subscribers ask for.
    pub bandwidth_estimation: bool,
    /// Publishers are told to pause the simulcast layers no subscriber asks for, and to resume
    /// them when one does (dynacast). Default on.
    pub dynacast: bool,
    /// STUN/TURN servers offered to WHIP/WHEP clients in `Link: <url>; rel="ice-server"`
    /// headers (RFC 9725 section 4.6). The server itself needs none: it is ICE-lite and
    /// reachable at its announced address. Default: none (no Link header).
    #[serde(deserialize_with = "ice_server_list")]
    pub ice_servers: Vec<IceServer>,
}

/// One STUN or TURN server for clients.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]` or `turns:...`.
    pub url: String,
    /// TURN long-term credentials, when the server needs them.
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An ICE server entry: a URL alone, or a table with TURN credentials.
#[derive(Deserialize)]
#[serde(untagged)]
enum IceServerEntry {
    Url(String),
    Full {
        url: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        credential: Option<String>,
    },
}

fn ice_server_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IceServer>, D::Error> {
    let plain = |url| IceServer { url, username: None, credential: None };
    Ok(match ListOrCsv::<IceServerEntry>::deserialize(d)? {
        ListOrCsv::Csv(text) => split_csv(&text).map(plain).collect(),
        ListOrCsv::List(items) => items
            .into_iter()
            .map(|e| match e {
                IceServerEntry::Url(url) => plain(url),
                IceServerEntry::Full { url, username, credential } => IceServer { url, username, credential },
            })
            .collect(),
    })
}

/// Why an ICE server entry would make a broken or unsafe `Link` header, if it would.
pub(super) fn ice_server_problem(server: &IceServer) -> Option<&'static str> {
    let known = ["stun:", "stuns:", "turn:", "turns:"];
    if !known.iter().any(|p| server.url.starts_with(p)) {
        return Some("url must start with stun:, stuns:, turn: or turns:");
    }
    let unsafe_char = |s: &str| s.chars().any(|c| c.is_control() || c == '"' || c == '\\');
    if server.url.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c)) {
        return Some("url must not contain spaces, quotes or angle brackets");
    }
    if server.username.as_deref().is_some_and(unsafe_char) || server.credential.as_deref().is_some_and(unsafe_char) {
        return Some("username and credential must not contain quotes, backslashes or control characters");
    }
    if server.username.is_some() != server.credential.is_some() {
        return Some("give both username and credential, or neither");
    }
    None
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            udp_port_start: 7882,
            tcp_port: 7881,
            shards: 0,
            departure_timeout_secs: 20,
            max_message_bytes: 65536,
            bandwidth_estimation: true,
            dynacast: true,
            ice_servers: Vec::new(),
        }
    }
}
