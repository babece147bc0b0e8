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

mod audio;
mod cluster;
mod http;
mod limits;
mod rooms;
mod rtc;
mod turn;
pub use audio::{AudioConfig, AudioMode, MAX_TOP_N};
pub use cluster::{ClusterConfig, DEFAULT_RELAY_PORT, MIN_CLUSTER_SECRET_BYTES, redact_url_password};
use http::cors_origin_problem;
pub use http::{DEFAULT_MAX_CONNECTIONS, HttpConfig};
pub use limits::Limits;
pub use rooms::{MAX_MESH_PARTICIPANTS, RoomsConfig};
use rtc::ice_server_problem;
pub use rtc::{IceServer, RtcConfig};
pub use turn::{MIN_TURN_SECRET_BYTES, TurnConfig};

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
    /// Cluster membership (with `redis_url`) and shutdown (drain).
    pub cluster: ClusterConfig,
    /// Audio in large rooms (top-N).
    pub audio: AudioConfig,
    /// TURN credentials for clients, and the embedded TURN server.
    pub turn: TurnConfig,
    /// Room topology: SFU, mesh, or a mesh while small.
    pub rooms: RoomsConfig,
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
/// A list given as a TOML array or as one comma-separated string (what the environment gives).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ListOrCsv<T> {
    Csv(String),
    List(Vec<T>),
}

pub(super) fn split_csv(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

pub(super) fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrCsv::<String>::deserialize(d)? {
        ListOrCsv::Csv(text) => split_csv(&text).collect(),
        ListOrCsv::List(items) => items,
    })
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
            cluster: ClusterConfig::default(),
            audio: AudioConfig::default(),
            turn: TurnConfig::default(),
            rooms: RoomsConfig::default(),
            dev: false,
            dev_explicit: false,
            log: DEFAULT_LOG.to_owned(),
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
        if self.rtc.tcp_port != 0 && self.rtc.tcp_port == self.http_port {
            return invalid(format!(
                "rtc.tcp_port = {} is also http_port: give ICE-TCP its own port",
                self.rtc.tcp_port
            ));
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
        if let Some(problem) = self.cluster.problem() {
            return invalid(problem);
        }
        if let Some(problem) = self.audio.problem() {
            return invalid(problem);
        }
        if let Some(problem) = self.turn.problem() {
            return invalid(problem);
        }
        if let Some(problem) = self.rooms.problem() {
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

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.cluster.drain_timeout_secs)
    }
}

#[cfg(test)]
mod tests;
