//! Server configuration.
//!
//! Sources, later ones winning:
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. an optional TOML file (`config/sfu.example.toml` documents every key);
//! 3. environment variables `SFU_<KEY>`, nested keys joined with `__`: `SFU_HTTP_PORT=9000`,
//!    `SFU_RTC__SHARDS=2`, `SFU_AUTH__API_SECRET=...`, `SFU_DEV=false`. Names are
//!    case-insensitive. A value that reads as a TOML integer or boolean is taken as one, anything
//!    else as a string; an empty value removes the key (back to its default). `SFU_CONFIG` is not a
//!    key: it names the config file (read by the command line front end);
//! 4. command-line flags (applied by the binary on top of [`Config::load`]).
//!
//! Unknown keys are errors, wherever they come from.
//!
//! # Dev mode
//!
//! When no config file is given, no API key or secret is configured and `dev` is not set
//! explicitly, the server starts in **dev mode**: `dev = true` with the well-known key pair
//! [`DEV_API_KEY`] / [`DEV_API_SECRET`]. Dev mode also enables the unauthenticated dev token
//! endpoint, through which anyone who can reach the server can mint tokens for any room.
//! Dev mode and the dev keys MUST NOT be used in production; [`Config::validate`] refuses the dev
//! secret unless `dev = true`, and refuses an implied dev mode on a non-loopback `bind` (only an
//! explicit `dev = true` may listen where other machines can reach it).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

mod limits;
pub use limits::Limits;

/// API key used in dev mode. Public knowledge: never use it in production.
pub const DEV_API_KEY: &str = "devkey";
/// API secret used in dev mode. Public knowledge: never use it in production.
pub const DEV_API_SECRET: &str = "devsecret-change-me-not-for-production";
/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "SFU_";
/// Environment variable naming the config file; not itself a config key.
pub const CONFIG_PATH_ENV: &str = "SFU_CONFIG";
/// Minimum length of the API secret outside dev mode (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
/// Our crates at info; the WebRTC stack only when something is wrong (its handshakes log a
/// line per packet at info).
pub const DEFAULT_LOG: &str = "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_srtp=warn,rtc_sctp=warn";

/// Complete server configuration.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server and the media UDP sockets bind to. Default `127.0.0.1`.
    pub bind: IpAddr,
    /// Address placed in ICE candidates, i.e. the address clients reach this server at (public or
    /// NAT 1:1 address). Default: none, then `bind` is announced when it is a specific address.
    pub announce: Option<IpAddr>,
    /// HTTP/WebSocket port (signaling, WHIP/WHEP, metrics, web client). 0 = any free port.
    /// Default 7880.
    pub http_port: u16,
    /// HTTP settings beyond the port: which other origins' pages may call WHIP/WHEP, the web
    /// client's directory, the header read timeout and the connection caps.
    pub http: HttpConfig,
    /// Media plane.
    pub rtc: RtcConfig,
    /// Token authentication.
    pub auth: AuthConfig,
    /// Bounds on tracks, offers, candidates, participants and rooms.
    pub limits: Limits,
    /// Development mode: dev keys and the unauthenticated dev token endpoint. Never in production.
    pub dev: bool,
    /// Whether dev mode was asked for explicitly (`dev = true` in the config file, or
    /// `SFU_DEV=true`) rather than implied by a missing config file and keys. Only an explicit
    /// dev mode may listen on a non-loopback address (see [`Config::validate`]).
    #[serde(skip)]
    pub dev_explicit: bool,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax. Default `info`.
    pub log: String,
}

/// Media plane settings.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    /// UDP port of the first worker shard; shard `i` uses `udp_port_start + i`. 0 = any free
    /// port for every shard. Default 7882.
    pub udp_port_start: u16,
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

/// A list given as a TOML array or as one comma-separated string (what the environment gives).
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrCsv<T> {
    Csv(String),
    List(Vec<T>),
}

fn split_csv(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrCsv::<String>::deserialize(d)? {
        ListOrCsv::Csv(text) => split_csv(&text).collect(),
        ListOrCsv::List(items) => items,
    })
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

/// Why `origin` cannot be an entry of `http.cors_origins`, if it cannot. Browsers send
/// `scheme://host[:port]` exactly, so a path or a trailing slash would never match.
fn cors_origin_problem(origin: &str) -> Option<&'static str> {
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

/// Why an ICE server entry would make a broken or unsafe `Link` header, if it would.
fn ice_server_problem(server: &IceServer) -> Option<&'static str> {
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

/// API key and secret used to sign and verify tokens.
#[derive(Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// API key id; written to the `kid` header of tokens this server issues.
    pub api_key: String,
    /// HMAC secret (HS256); at least [`MIN_SECRET_BYTES`] bytes outside dev mode.
    pub api_secret: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.api_secret.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig").field("api_key", &self.api_key).field("api_secret", &secret).finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            announce: None,
            http_port: 7880,
            http: HttpConfig::default(),
            rtc: RtcConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            dev: false,
            dev_explicit: false,
            log: DEFAULT_LOG.to_owned(),
        }
    }
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            udp_port_start: 7882,
            shards: 0,
            departure_timeout_secs: 20,
            max_message_bytes: 65536,
            bandwidth_estimation: true,
            dynacast: true,
            ice_servers: Vec::new(),
        }
    }
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

/// Why the configuration could not be loaded or is not acceptable.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    /// The config file is not valid TOML.
    #[error("cannot parse config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A key that the configuration does not have.
    #[error("unknown config key `{key}` (from {origin})")]
    UnknownKey { key: String, origin: String },
    /// A key whose value has the wrong type or cannot be parsed.
    #[error("invalid value for config key `{key}` (from {origin}): {message}")]
    InvalidValue { key: String, origin: String, message: String },
    /// An `SFU_*` environment variable that does not name a key properly.
    #[error("invalid environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// The configuration parsed but is not acceptable (see [`Config::validate`]).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where a key's value came from, for error messages.
struct Origins<'a> {
    file: Option<&'a Path>,
    /// Dotted key -> environment variable that set it.
    env: HashMap<String, String>,
}

impl Origins<'_> {
    fn describe(&self, key: &str) -> String {
        // The key itself or its closest enclosing table set from the environment.
        let mut k = key;
        loop {
            if let Some(var) = self.env.get(k) {
                return format!("environment variable {var}");
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => break,
            }
        }
        match self.file {
            Some(p) => format!("config file {}", p.display()),
            None => "defaults".to_owned(),
        }
    }
}

/// Parses an environment value as a TOML scalar: boolean, integer, else string.
fn env_scalar(raw: &str) -> Value {
    if raw.eq_ignore_ascii_case("true") {
        Value::Boolean(true)
    } else if raw.eq_ignore_ascii_case("false") {
        Value::Boolean(false)
    } else if let Ok(i) = raw.parse::<i64>() {
        Value::Integer(i)
    } else {
        Value::String(raw.to_owned())
    }
}

/// Sets (or with `None` removes) `path` in `table`, creating intermediate tables.
fn set_path(table: &mut Table, path: &[String], value: Option<Value>) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = table;
    for (i, seg) in parents.iter().enumerate() {
        let entry = cur.entry(seg.clone()).or_insert_with(|| Value::Table(Table::new()));
        cur = match entry {
            Value::Table(t) => t,
            _ => return Err(format!("`{}` is not a table", path[..=i].join("."))),
        };
    }
    match value {
        Some(v) => {
            cur.insert(last.clone(), v);
        }
        None => {
            cur.remove(last);
        }
    }
    Ok(())
}

fn get_path_mut<'a>(table: &'a mut Table, key: &str) -> Option<&'a mut Value> {
    let mut parts = key.split('.');
    let mut v = table.get_mut(parts.next()?)?;
    for p in parts {
        v = v.as_table_mut()?.get_mut(p)?;
    }
    Some(v)
}

fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } | Segment::Enum { variant: key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Unknown => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Config {
    /// A development configuration: defaults, `dev = true` and the well-known dev keys.
    pub fn for_dev() -> Self {
        Config {
            dev: true,
            auth: AuthConfig { api_key: DEV_API_KEY.to_owned(), api_secret: DEV_API_SECRET.to_owned() },
            ..Config::default()
        }
    }

    /// Loads the configuration: defaults, then the TOML file at `path` (if any), then the `SFU_*`
    /// variables among `env` (pass `std::env::vars()`; other variables are ignored), then the dev
    /// mode rule (see the module docs). Does not call [`Config::validate`].
    pub fn load(path: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|error| ConfigError::Read { path: p.to_owned(), error })?;
                text.parse::<Table>().map_err(|e| ConfigError::Parse {
                    path: p.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?
            }
            None => Table::new(),
        };

        let mut origins = Origins { file: path, env: HashMap::new() };
        let mut env: Vec<(String, String)> = env
            .filter(|(k, _)| {
                k.len() >= ENV_PREFIX.len()
                    && k[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX)
                    && !k.eq_ignore_ascii_case(CONFIG_PATH_ENV)
            })
            .collect();
        // Deterministic order regardless of the environment's iteration order.
        env.sort();
        for (var, raw) in env {
            let name = var[ENV_PREFIX.len()..].to_ascii_lowercase();
            let segments: Vec<String> = name.split("__").map(str::to_owned).collect();
            if segments.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::Env {
                    var,
                    message: "expected SFU_<KEY> with nested keys joined by `__`".to_owned(),
                });
            }
            let value = if raw.is_empty() { None } else { Some(env_scalar(&raw)) };
            set_path(&mut table, &segments, value).map_err(|message| ConfigError::Env { var: var.clone(), message })?;
            origins.env.insert(segments.join("."), var);
        }

        let dev_explicit = table.contains_key("dev");
        let mut cfg = Self::from_table(table, &origins)?;
        cfg.dev_explicit = dev_explicit && cfg.dev;
        if !dev_explicit {
            cfg.dev = path.is_none() && cfg.auth.api_key.is_empty() && cfg.auth.api_secret.is_empty();
        }
        if cfg.dev {
            if cfg.auth.api_key.is_empty() {
                cfg.auth.api_key = DEV_API_KEY.to_owned();
            }
            if cfg.auth.api_secret.is_empty() {
                cfg.auth.api_secret = DEV_API_SECRET.to_owned();
            }
        }
        Ok(cfg)
    }

    /// Deserializes the merged table. A value set from the environment that was read as an
    /// integer or boolean but is wanted as a string (say, an all-digit secret) is retried as the
    /// original string.
    fn from_table(mut table: Table, origins: &Origins<'_>) -> Result<Config, ConfigError> {
        // Keys retried as strings, with the error their original value produced.
        let mut retried: HashMap<String, String> = HashMap::new();
        loop {
            let result: Result<Config, _> = serde_path_to_error::deserialize(Value::Table(table.clone()));
            let err = match result {
                Ok(cfg) => return Ok(cfg),
                Err(e) => e,
            };
            let key = dotted(err.path());
            // toml appends "in `key`" on a line of its own; the key is reported separately.
            let inner = err.inner().to_string();
            let mut message = inner.split("\nin `").next().unwrap_or_default().trim().to_owned();
            if let Some(original) = retried.get(&key) {
                // The string form fails too: report what was wrong with the value as given.
                message = original.clone();
            } else if origins.env.contains_key(&key)
                && let Some(v) = get_path_mut(&mut table, &key)
                && (v.is_integer() || v.is_bool())
            {
                *v = Value::String(v.to_string());
                retried.insert(key, message);
                continue;
            }
            if message.starts_with("unknown field") {
                return Err(ConfigError::UnknownKey { origin: origins.describe(&key), key });
            }
            let shown = if key.is_empty() { "<root>".to_owned() } else { key };
            return Err(ConfigError::InvalidValue { origin: origins.describe(&shown), key: shown, message });
        }
    }

    /// Checks the configuration for values the server cannot or must not run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.auth.api_key.is_empty() {
            return invalid(
                "auth.api_key is empty: set it in the config file or SFU_AUTH__API_KEY \
                 (or run with dev = true for local development)"
                    .into(),
            );
        }
        if self.auth.api_secret.is_empty() {
            return invalid(
                "auth.api_secret is empty: set it in the config file or SFU_AUTH__API_SECRET \
                 (or run with dev = true for local development)"
                    .into(),
            );
        }
        if !self.dev {
            if self.is_dev_keys() {
                return invalid(
                    "auth.api_secret is the public dev secret; choose a private secret or set \
                     dev = true (never in production)"
                        .into(),
                );
            }
            if self.auth.api_secret.len() < MIN_SECRET_BYTES {
                return invalid(format!(
                    "auth.api_secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                    self.auth.api_secret.len()
                ));
            }
        }
        if self.dev && !self.dev_explicit && !self.bind.is_loopback() {
            // Implied dev mode lets anyone who reaches the server mint tokens (/dev/token, public
            // keys): fine on loopback, not on an address other machines can reach.
            return invalid(format!(
                "dev mode is implied (no config file, no API keys) and bind = {} is not a loopback \
                 address, so anyone who can reach it could mint tokens through /dev/token; \
                 configure auth.api_key and auth.api_secret (config file, or SFU_AUTH__API_KEY \
                 and SFU_AUTH__API_SECRET), or set dev = true (SFU_DEV=true) to run dev mode on \
                 this address anyway",
                self.bind
            ));
        }
        if let Some(a) = self.announce {
            if a.is_unspecified() || a.is_multicast() {
                return invalid(format!(
                    "announce = {a} is not an address clients can reach; give the server's \
                     public or LAN address"
                ));
            }
            if let IpAddr::V4(v4) = a
                && v4.is_broadcast()
            {
                return invalid(format!("announce = {a} is a broadcast address"));
            }
        }
        if self.bind.is_multicast() {
            return invalid(format!("bind = {} is a multicast address", self.bind));
        }
        if self.rtc.shards > 1024 {
            return invalid(format!("rtc.shards = {} is more than 1024", self.rtc.shards));
        }
        if self.rtc.udp_port_start != 0 {
            let last = self.rtc.udp_port_start as usize + self.effective_shards() - 1;
            if last > u16::MAX as usize {
                return invalid(format!(
                    "rtc.udp_port_start = {} with {} shards needs ports up to {last}, beyond 65535",
                    self.rtc.udp_port_start,
                    self.effective_shards()
                ));
            }
        }
        for origin in &self.http.cors_origins {
            if let Some(problem) = cors_origin_problem(origin) {
                return invalid(format!("http.cors_origins entry {origin:?} {problem}"));
            }
        }
        for server in &self.rtc.ice_servers {
            if let Some(problem) = ice_server_problem(server) {
                return invalid(format!("rtc.ice_servers entry {:?}: {problem}", server.url));
            }
        }
        if !(1..=3600).contains(&self.http.header_read_timeout_secs) {
            return invalid(format!(
                "http.header_read_timeout_secs = {} must be between 1 and 3600",
                self.http.header_read_timeout_secs
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.rtc.max_message_bytes) {
            return invalid(format!(
                "rtc.max_message_bytes = {} must be between 1024 and 16777216",
                self.rtc.max_message_bytes
            ));
        }
        if let Some(problem) = self.limits.problem() {
            return invalid(problem);
        }
        Ok(())
    }

    /// Whether the configured secret is the public dev secret (then anyone can mint tokens).
    pub fn is_dev_keys(&self) -> bool {
        self.auth.api_secret == DEV_API_SECRET
    }

    /// Socket address of the HTTP server.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.http_port)
    }

    /// Address to put in ICE candidates: `announce`, else `bind` unless it is a wildcard
    /// (`None`: the caller has to find the host's address itself).
    pub fn announce_ip(&self) -> Option<IpAddr> {
        self.announce.or((!self.bind.is_unspecified()).then_some(self.bind))
    }

    /// Number of worker shards to run: `rtc.shards`, or the number of CPU cores when 0.
    pub fn effective_shards(&self) -> usize {
        match self.rtc.shards {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
    }

    /// `http.header_read_timeout_secs` as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.http.header_read_timeout_secs)
    }

    /// The cap on open HTTP connections: `http.max_connections`, or when it is 0, 90 % of the
    /// open-file limit `nofile` (the rest is kept for the media sockets, logs and files), at most
    /// [`DEFAULT_MAX_CONNECTIONS`] and at least 1.
    pub fn max_connections(&self, nofile: u64) -> usize {
        match self.http.max_connections {
            0 => {
                let derived = usize::try_from(nofile / 10 * 9).unwrap_or(usize::MAX);
                derived.clamp(1, DEFAULT_MAX_CONNECTIONS)
            }
            n => n,
        }
    }

    /// `rtc.departure_timeout_secs` as a duration.
    pub fn departure_timeout(&self) -> Duration {
        Duration::from_secs(self.rtc.departure_timeout_secs)
    }
}

#[cfg(test)]
mod tests;
