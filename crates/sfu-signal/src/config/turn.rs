//! `[turn]`: TURN for clients whose networks block UDP (docs/turn.md). With a `secret`, every
//! `joined` (and every WHIP/WHEP answer) carries time-limited TURN credentials for the servers
//! in `urls` and, with `enabled`, for the embedded server, which relays only to this node's own
//! media sockets.

use serde::Deserialize;
use std::path::PathBuf;

use super::string_list;

/// Shortest `turn.secret`: whoever knows it can mint TURN credentials.
pub const MIN_TURN_SECRET_BYTES: usize = 16;

#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// The TURN REST secret (coturn's `static-auth-secret`). Required for anything here.
    pub secret: String,
    /// External TURN servers' URLs (`turn:host:3478?transport=udp`, `turns:host:443?transport=tcp`)
    /// that share the secret; offered after the embedded server's.
    #[serde(deserialize_with = "string_list")]
    pub urls: Vec<String>,
    /// How long a minted credential lasts. Default 86400 (24 h).
    pub ttl_secs: u64,
    /// Runs the embedded TURN server. Default off.
    pub enabled: bool,
    /// The embedded server's UDP port; 0 = no UDP listener. Default 3478.
    pub udp_port: u16,
    /// Its TCP port; 0 = no TCP listener. Default 3478.
    pub tcp_port: u16,
    /// Its TLS port (`turns:`), used with `cert_file` and `key_file`; 0 = no TLS. Default 0.
    pub tls_port: u16,
    /// PEM certificate chain for TLS, for the name in `host`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for TLS.
    pub key_file: Option<PathBuf>,
    /// The name (or address) clients reach the embedded server at, in its URLs. For `turns:` it
    /// must be a name the certificate holds. Default: the announced address.
    pub host: Option<String>,
    /// Ports of the relay sockets, one per allocation. Default 49152-65535.
    pub relay_port_min: u16,
    pub relay_port_max: u16,
    /// Allocations at once, in all. Default 1000.
    pub max_allocations: usize,
    /// Allocations at once from one client IP. Default 64.
    pub max_allocations_per_ip: usize,
    /// The credentials' realm. Default `sfu`.
    pub realm: String,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            secret: String::new(),
            urls: Vec::new(),
            ttl_secs: 86_400,
            enabled: false,
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: 0,
            cert_file: None,
            key_file: None,
            host: None,
            relay_port_min: 49152,
            relay_port_max: 65535,
            max_allocations: 1000,
            max_allocations_per_ip: 64,
            realm: "sfu".to_owned(),
        }
    }
}

// By hand: the secret must never reach a log line.
impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("secret", &if self.secret.is_empty() { "" } else { "<set>" })
            .field("urls", &self.urls)
            .field("ttl_secs", &self.ttl_secs)
            .field("enabled", &self.enabled)
            .field("udp_port", &self.udp_port)
            .field("tcp_port", &self.tcp_port)
            .field("tls_port", &self.tls_port)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("host", &self.host)
            .field("relay_port_min", &self.relay_port_min)
            .field("relay_port_max", &self.relay_port_max)
            .field("max_allocations", &self.max_allocations)
            .field("max_allocations_per_ip", &self.max_allocations_per_ip)
            .field("realm", &self.realm)
            .finish()
    }
}

impl TurnConfig {
    /// Whether clients get TURN credentials at all.
    pub fn offered(&self) -> bool {
        self.enabled || !self.urls.is_empty()
    }

    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if !self.offered() {
            return None;
        }
        if self.secret.len() < MIN_TURN_SECRET_BYTES {
            return Some(format!(
                "turn.secret is {} bytes; TURN (turn.enabled or turn.urls) needs one of at least \
                 {MIN_TURN_SECRET_BYTES} (SFU_TURN__SECRET), the same as the TURN servers' \
                 static-auth-secret",
                self.secret.len()
            ));
        }
        for url in &self.urls {
            let plain = !url.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"\\".contains(c));
            if !(url.starts_with("turn:") || url.starts_with("turns:")) || !plain {
                return Some(format!("turn.urls entry {url:?} must be a turn: or turns: URL without spaces or quotes"));
            }
        }
        if !(60..=7 * 86_400).contains(&self.ttl_secs) {
            return Some(format!("turn.ttl_secs = {} must be between 60 and 604800", self.ttl_secs));
        }
        if self.realm.is_empty() || self.realm.len() > 127 || !self.realm.is_ascii() {
            return Some("turn.realm must be 1 to 127 ASCII characters".to_owned());
        }
        if !self.enabled {
            return None;
        }
        if self.udp_port == 0 && self.tcp_port == 0 && self.tls_port == 0 {
            return Some("turn.enabled needs at least one of turn.udp_port, tcp_port, tls_port".to_owned());
        }
        if self.tls_port != 0 && (self.cert_file.is_none() || self.key_file.is_none()) {
            return Some("turn.tls_port needs turn.cert_file and turn.key_file".to_owned());
        }
        if self.tls_port != 0 && self.tls_port == self.tcp_port {
            return Some("turn.tls_port and turn.tcp_port must differ".to_owned());
        }
        if self.relay_port_min == 0 || self.relay_port_max < self.relay_port_min {
            return Some(format!(
                "turn.relay_port_min..relay_port_max ({}..{}) must be a range of ports from 1",
                self.relay_port_min, self.relay_port_max
            ));
        }
        if self.max_allocations == 0 || self.max_allocations_per_ip == 0 {
            return Some("turn.max_allocations and turn.max_allocations_per_ip must be at least 1".to_owned());
        }
        if let Some(host) = &self.host
            && (host.is_empty() || host.chars().any(|c| c.is_whitespace() || "<>\"\\/?#@".contains(c)))
        {
            return Some(format!("turn.host {host:?} must be a host name or address"));
        }
        None
    }
}
