//! Command line of the `sfu` binary.
//!
//! ```text
//! sfu [--config FILE] [--bind IP] [--announce IP]            # same as `sfu serve`
//! sfu serve [--config FILE] [--bind IP] [--announce IP]
//! sfu token --room R --identity I [--grants publish,subscribe,publish_data,admin] [--ttl 6h]
//! ```
//!
//! `--config`, `--bind` and `--announce` are global: they may be given before or after the
//! subcommand. Settings are layered flags > `SFU_*` environment variables > config file > defaults.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use sfu_signal::auth::{Claims, Grants, TokenAuthority, unix_time};
use sfu_signal::config::{CONFIG_PATH_ENV, Config};

/// Multi-party WebRTC selective forwarding unit.
#[derive(Parser, Debug, Clone)]
#[command(name = "sfu", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: ConfigArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The subcommand to run, `serve` when none was given.
    pub fn command_or_serve(&self) -> Command {
        self.command.clone().unwrap_or_else(|| Command::Serve(ServeArgs::default()))
    }
}

/// Options that select and override the configuration; accepted by every subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (TOML); see config/sfu.example.toml. Without one (and without API
    /// keys in the environment) the server runs in dev mode, on a loopback address only unless
    /// `dev = true` (SFU_DEV=true) is set explicitly.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_PATH_ENV, global = true)]
    pub config: Option<PathBuf>,
    /// Address to bind the HTTP server and media sockets to (overrides `bind`).
    #[arg(long, value_name = "IP", global = true)]
    pub bind: Option<IpAddr>,
    /// Address to announce in ICE candidates (overrides `announce`).
    #[arg(long, value_name = "IP", global = true)]
    pub announce: Option<IpAddr>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print an access token signed with the configured API key and secret.
    Token(TokenArgs),
}

/// Options of `sfu serve` beyond the global ones (none yet).
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {}

/// Options of `sfu token`.
#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// Room the token admits to.
    #[arg(long)]
    pub room: String,
    /// Participant identity (unique within the room).
    #[arg(long)]
    pub identity: String,
    /// Comma-separated grants: publish, subscribe, publish_data, admin (or all, none).
    #[arg(long, value_parser = parse_grants, default_value = "publish,subscribe,publish_data")]
    pub grants: Grants,
    /// Validity, e.g. 30s, 10m, 6h, 2d, 1h30m (a bare number is seconds).
    #[arg(long, value_parser = parse_ttl, default_value = "6h")]
    pub ttl: Duration,
    /// Optional display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Optional room topology claim (auto, sfu, mesh); honoured when this token creates the room.
    #[arg(long, value_parser = parse_topology)]
    pub topology: Option<sfu_proto::TopologySetting>,
    /// Optional room audio claim (forward, mix); honoured when this token creates the room.
    #[arg(long, value_parser = parse_audio_mode)]
    pub audio_mode: Option<sfu_signal::config::AudioMode>,
}

/// Parses a topology claim: `auto`, `sfu` or `mesh`.
pub fn parse_topology(s: &str) -> Result<sfu_proto::TopologySetting, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(sfu_proto::TopologySetting::Auto),
        "sfu" => Ok(sfu_proto::TopologySetting::Sfu),
        "mesh" => Ok(sfu_proto::TopologySetting::Mesh),
        _ => Err(format!("unknown topology `{s}` (expected auto, sfu or mesh)")),
    }
}

/// Parses an audio mode claim: `forward` or `mix`.
pub fn parse_audio_mode(s: &str) -> Result<sfu_signal::config::AudioMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "forward" => Ok(sfu_signal::config::AudioMode::Forward),
        "mix" => Ok(sfu_signal::config::AudioMode::Mix),
        _ => Err(format!("unknown audio mode `{s}` (expected forward or mix)")),
    }
}

/// Parses a duration such as `30s`, `10m`, `6h`, `2d`, `1w` or combinations like `1h30m`.
/// A bare number is seconds. Zero is rejected.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let input = s.trim().to_ascii_lowercase();
    if input.is_empty() {
        return Err("empty duration (expected e.g. 30s, 10m, 6h, 2d)".to_owned());
    }
    let bad = |why: &str| format!("invalid duration `{s}`: {why} (expected e.g. 30s, 10m, 6h, 2d)");
    if input.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = input.parse().map_err(|_| bad("number too large"))?;
        return positive(secs, s);
    }
    let mut total: u64 = 0;
    let mut rest = input.as_str();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "" => return Err(bad("missing unit")),
            other => {
                return Err(bad(&format!("unknown unit `{other}` (use s, m, h, d or w)")));
            }
        };
        total = n.checked_mul(scale).and_then(|v| total.checked_add(v)).ok_or_else(|| bad("too large"))?;
    }
    positive(total, s)
}

fn positive(secs: u64, s: &str) -> Result<Duration, String> {
    if secs == 0 {
        Err(format!("invalid duration `{s}`: must be greater than zero"))
    } else {
        Ok(Duration::from_secs(secs))
    }
}

/// Parses a comma-separated grant list: `publish`, `subscribe`, `publish_data` (also
/// `publish-data`, `data`), `admin`, `all`, `none`. Case-insensitive; an empty list is no grants.
pub fn parse_grants(s: &str) -> Result<Grants, String> {
    let mut g = Grants::none();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().replace('-', "_").as_str() {
            "publish" => g.publish = true,
            "subscribe" => g.subscribe = true,
            "publish_data" | "data" => g.publish_data = true,
            "admin" => g.admin = true,
            "all" => g = Grants::all(),
            "none" => {}
            _ => {
                return Err(format!(
                    "unknown grant `{part}` (expected publish, subscribe, publish_data, admin, \
                     all or none)"
                ));
            }
        }
    }
    Ok(g)
}

/// Loads the configuration: `--config` file (or `SFU_CONFIG`), then `SFU_*` environment
/// variables, then `--bind`/`--announce`; validates the result.
pub fn load_config(args: &ConfigArgs) -> anyhow::Result<Config> {
    // Variables that are not valid Unicode cannot be config values; skip them rather than panic.
    let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut cfg = Config::load(args.config.as_deref(), env)?;
    if let Some(bind) = args.bind {
        cfg.bind = bind;
    }
    if let Some(announce) = args.announce {
        cfg.announce = Some(announce);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Issues the access token described by `args` with the configured keys; returns only the token.
/// (With dev keys the token is only good for a dev-mode server; callers may warn on stderr
/// when `cfg.is_dev_keys()`.)
pub fn run_token(cfg: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    anyhow::ensure!(!args.room.trim().is_empty(), "--room must not be empty");
    anyhow::ensure!(!args.identity.trim().is_empty(), "--identity must not be empty");
    anyhow::ensure!(!cfg.auth.api_secret.is_empty(), "no API secret configured");
    let now = unix_time(SystemTime::now());
    let claims = Claims {
        sub: args.identity.clone(),
        room: args.room.clone(),
        grants: args.grants,
        exp: now.saturating_add(args.ttl.as_secs()),
        iat: now,
        name: args.name.clone(),
        topology: args.topology,
        audio_mode: args.audio_mode,
    };
    Ok(TokenAuthority::from_config(&cfg.auth).sign(&claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_ttl("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl(" 6H "), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn ttl_errors() {
        for bad in ["", "h", "6x", "1h30", "-5m", "0", "0s", "1.5h", "99999999999999999999s"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_ttl("18446744073709551615d").is_err());
    }

    #[test]
    fn grants_lists() {
        assert_eq!(parse_grants("publish,subscribe,publish_data"), Ok(Grants::participant()));
        assert_eq!(parse_grants("publish, subscribe, publish-data"), Ok(Grants::participant()));
        assert_eq!(parse_grants("all"), Ok(Grants::all()));
        assert_eq!(parse_grants("subscribe,admin,all"), Ok(Grants::all()));
        assert_eq!(parse_grants("none"), Ok(Grants::none()));
        assert_eq!(parse_grants(""), Ok(Grants::none()));
        let g = parse_grants("SUBSCRIBE,admin").unwrap();
        assert!(g.subscribe && g.admin && !g.publish && !g.publish_data);
        assert!(parse_grants("publish,fly").unwrap_err().contains("fly"));
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["sfu", "--bind", "10.0.0.1"]).unwrap();
        assert!(cli.command.is_none());
        assert!(matches!(cli.command_or_serve(), Command::Serve(_)));
        assert_eq!(cli.global.bind, Some("10.0.0.1".parse::<IpAddr>().unwrap()));

        let cli = Cli::try_parse_from(["sfu", "serve", "--announce", "192.0.2.1"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(_))));
        assert_eq!(cli.global.announce, Some("192.0.2.1".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn token_subcommand() {
        let cli =
            Cli::try_parse_from(["sfu", "--config", "x.toml", "token", "--room", "r1", "--identity", "alice"]).unwrap();
        assert_eq!(cli.global.config, Some(PathBuf::from("x.toml")));
        let Some(Command::Token(t)) = cli.command else { panic!("expected token") };
        assert_eq!((t.room.as_str(), t.identity.as_str()), ("r1", "alice"));
        assert_eq!(t.grants, Grants::participant());
        assert_eq!(t.ttl, Duration::from_secs(6 * 3600));

        let cli = Cli::try_parse_from([
            "sfu",
            "token",
            "--room",
            "r",
            "--identity",
            "i",
            "--grants",
            "subscribe",
            "--ttl",
            "10m",
            "--config",
            "y.toml",
        ])
        .unwrap();
        assert_eq!(cli.global.config, Some(PathBuf::from("y.toml")));
        let Some(Command::Token(t)) = cli.command else { panic!("expected token") };
        assert_eq!(t.grants, parse_grants("subscribe").unwrap());
        assert_eq!(t.ttl, Duration::from_secs(600));

        assert!(Cli::try_parse_from(["sfu", "token", "--room", "r"]).is_err());
        assert!(Cli::try_parse_from(["sfu", "token", "--room", "r", "--identity", "i", "--ttl", "x"]).is_err());
    }

    #[test]
    fn token_verifies_with_the_same_keys() {
        let cfg = Config::for_dev();
        let args = TokenArgs {
            room: "r1".into(),
            identity: "alice".into(),
            grants: Grants::all(),
            ttl: Duration::from_secs(60),
            name: Some("Alice".into()),
            topology: Some(sfu_proto::TopologySetting::Mesh),
            audio_mode: Some(sfu_signal::config::AudioMode::Mix),
        };
        let token = run_token(&cfg, &args).unwrap();
        let now = unix_time(SystemTime::now());
        let claims = TokenAuthority::from_config(&cfg.auth).verify(&token, now).unwrap();
        assert_eq!((claims.room.as_str(), claims.sub.as_str()), ("r1", "alice"));
        assert_eq!(claims.grants, Grants::all());
        assert_eq!(claims.name.as_deref(), Some("Alice"));
        assert_eq!(claims.topology, Some(sfu_proto::TopologySetting::Mesh));
        assert_eq!(claims.audio_mode, Some(sfu_signal::config::AudioMode::Mix));
        assert_eq!(parse_audio_mode("MIX"), Ok(sfu_signal::config::AudioMode::Mix));
        assert!(parse_audio_mode("mcu").is_err());

        let empty = TokenArgs { room: " ".into(), ..args };
        assert!(run_token(&cfg, &empty).is_err());
    }
}
