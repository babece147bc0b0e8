//! Command line: `sfu-loadtest <scenario> --url http://HOST:PORT --subscribers N [options]`.

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "sfu-loadtest",
    version,
    about = "Load harness for the SFU: simulated publishers and subscribers speaking real ICE, DTLS and SRTP",
    after_help = "Scenarios:\n  livestream  P publishers (default 1), each alone in a room with video simulcast + audio; N receive-only subscribers spread over the rooms\n  meeting     N participants in R rooms (default ceil(N/8)); everyone publishes simulcast video + audio and subscribes to everyone else\n  audio-room  P speakers per room (default 2) sending audio only; N receive-only listeners spread over R rooms (default 1)"
)]
pub struct Cli {
    /// What to simulate.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server's HTTP address (signaling at /rtc, metrics at /metrics); with `--server janus`,
    /// Janus's WebSocket transport (e.g. ws://127.0.0.1:8188). Several nodes of a cluster:
    /// comma-separated and/or repeated (`--url http://A:7880,http://B:7880 --url http://C:7880`).
    /// Publishers (livestream, audio-room speakers) then join the first node, the origin; every
    /// subscriber, listener and meeting participant goes to the next node in turn (number i to
    /// url i % n), and the report adds a section per node. All nodes must accept the same
    /// --api-key / --api-secret.
    #[arg(long = "url", value_name = "URL[,URL...]", value_delimiter = ',', default_value = "http://127.0.0.1:7880")]
    pub urls: Vec<String>,
    /// Which server the harness talks to: this project's SFU, or Janus's VideoRoom plugin (for
    /// side-by-side figures; livestream and audio-room only, no /metrics).
    #[arg(long, value_enum, default_value_t = ServerKind::Sfu)]
    pub server: ServerKind,
    /// Receiving participants (meeting: all participants).
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Publishers: per run for livestream (one room each), per room for audio-room. Ignored by meeting.
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Rooms to spread participants over.
    #[arg(long)]
    pub rooms: Option<usize>,
    /// How long to hold the full load after the ramp, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Joins per second while ramping up, e.g. 100/s or 100.
    #[arg(long, default_value = "100/s", value_parser = parse_rate)]
    pub ramp: f64,
    /// During the hold, this many subscribers per second leave (cleanly) and as many new ones join
    /// in their place, e.g. 5/s (at most 50/s). Off by default.
    #[arg(long, value_parser = parse_churn)]
    pub churn: Option<f64>,
    /// Video layer every subscriber asks for.
    #[arg(long, value_enum, default_value_t = Layer::Auto)]
    pub layer: Layer,
    /// Random loss applied to media (RTP/RTCP) each subscriber receives, e.g. 2%.
    #[arg(long, value_parser = parse_percent)]
    pub loss: Option<f64>,
    /// Downstream bottleneck per subscriber, e.g. 800kbit, 2mbit (queue: 250 ms, tail drop).
    #[arg(long, value_parser = parse_bandwidth)]
    pub bandwidth: Option<u64>,
    /// One-way delay added to everything each subscriber receives, e.g. 40ms.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// PID of the server, for CPU and memory figures from /proc. With several --url, one PID per
    /// node in the same order (comma-separated and/or repeated), or a single PID for the first.
    #[arg(long = "server-pid", value_name = "PID[,PID...]", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Write the report as JSON to this file (plots go next to it as FILE-stem-*.png).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for PNG plots over time (default: next to --json, else none).
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Media worker threads (each drives its share of the peer connections).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// API key the server verifies tokens with (header `kid`).
    #[arg(long, env = "SFU_AUTH__API_KEY", default_value = "devkey")]
    pub api_key: String,
    /// API secret the server verifies tokens with (HS256).
    #[arg(
        long,
        env = "SFU_AUTH__API_SECRET",
        default_value = "devsecret-change-me-not-for-production",
        hide_env_values = true
    )]
    pub api_secret: String,
    /// Prefix of room names (rooms are PREFIX-0, PREFIX-1, ...).
    #[arg(long, default_value = "loadtest")]
    pub room_prefix: String,
    /// Seconds to wait for every subscriber to receive media after the ramp before holding.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub settle: Duration,
    /// After the settle, go on this long before the hold starts, e.g. 5s: subscribers that began
    /// on a lower layer reach the one they asked for at a later keyframe (every 3 s), so a hold
    /// right after the settle still sees those switches.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Exit with status 3 unless every subscriber received media (for scripted smoke tests).
    #[arg(long)]
    pub require_media: bool,
    /// Exit with status 3 if the whole-run loss is at or above this, e.g. 1%.
    #[arg(long, value_parser = parse_percent)]
    pub max_loss: Option<f64>,
    /// Seed for the impairment's random loss.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Livestream,
    Meeting,
    AudioRoom,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Livestream => "livestream",
            Scenario::Meeting => "meeting",
            Scenario::AudioRoom => "audio-room",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Sfu,
    Janus,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Sfu => "sfu",
            ServerKind::Janus => "janus",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Low,
    Medium,
    High,
    Auto,
}

impl Layer {
    pub fn preference(self) -> sfu_proto::LayerPreference {
        match self {
            Layer::Low => sfu_proto::LayerPreference::Low,
            Layer::Medium => sfu_proto::LayerPreference::Medium,
            Layer::High => sfu_proto::LayerPreference::High,
            Layer::Auto => sfu_proto::LayerPreference::Auto,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Layer::Low => "low",
            Layer::Medium => "medium",
            Layer::High => "high",
            Layer::Auto => "auto",
        }
    }
}

/// `30s`, `1500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = split_unit(s);
    let value: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("bad duration {s:?}");
    }
    let secs = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "us" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => bail!("unknown duration unit {other:?} in {s:?}"),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `100/s`, `100`, `6000/m`.
pub fn parse_rate(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let (num, per) = match s.split_once('/') {
        Some((n, p)) => (n.trim(), p.trim()),
        None => (s, "s"),
    };
    let value: f64 = num.parse().with_context(|| format!("bad rate {s:?}"))?;
    let scale = match per {
        "s" | "sec" => 1.0,
        "m" | "min" => 1.0 / 60.0,
        other => bail!("unknown rate unit {other:?} in {s:?}"),
    };
    let rate = value * scale;
    if !(rate > 0.0 && rate.is_finite()) {
        bail!("rate must be positive: {s:?}");
    }
    Ok(rate)
}

/// The highest churn rate accepted, per second (each event is a leave and a full join with ICE
/// and DTLS, on the server and in the harness).
pub const MAX_CHURN_RATE: f64 = 50.0;

/// A rate as for `--ramp`, at most `MAX_CHURN_RATE` per second.
pub fn parse_churn(s: &str) -> anyhow::Result<f64> {
    let rate = parse_rate(s)?;
    if rate > MAX_CHURN_RATE {
        bail!("churn {s:?} is above the cap of {}/s", MAX_CHURN_RATE);
    }
    Ok(rate)
}

/// `2%`, `0.5%`, or a fraction like `0.02`. Returns a fraction in [0, 1].
pub fn parse_percent(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let fraction = match s.strip_suffix('%') {
        Some(n) => n.trim().parse::<f64>().with_context(|| format!("bad percentage {s:?}"))? / 100.0,
        None => s.parse::<f64>().with_context(|| format!("bad percentage {s:?}"))?,
    };
    if !(0.0..=1.0).contains(&fraction) {
        bail!("loss must be between 0% and 100%: {s:?}");
    }
    Ok(fraction)
}

/// `800kbit`, `2mbit`, `1.5Mbps`, `500000` (bits/s). Returns bits per second.
pub fn parse_bandwidth(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = split_unit(s);
    let value: f64 = num.parse().with_context(|| format!("bad bandwidth {s:?}"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "bit" | "bps" | "bit/s" => 1.0,
        "k" | "kbit" | "kbps" | "kbit/s" => 1e3,
        "m" | "mbit" | "mbps" | "mbit/s" => 1e6,
        "g" | "gbit" | "gbps" | "gbit/s" => 1e9,
        other => bail!("unknown bandwidth unit {other:?} in {s:?}"),
    };
    let bps = value * scale;
    if !(bps >= 8000.0 && bps.is_finite()) {
        bail!("bandwidth must be at least 8kbit: {s:?}");
    }
    Ok(bps as u64)
}

fn split_unit(s: &str) -> (&str, &str) {
    let at = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    (&s[..at], s[at..].trim())
}

/// Where the server is: host:port for HTTP and the WebSocket URL.
#[derive(Clone, Debug)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
}

impl ServerUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if let Some(r) = url.strip_prefix("ws://") {
            r
        } else if url.starts_with("https://") || url.starts_with("wss://") {
            bail!("TLS is not supported by the harness; use http://HOST:PORT");
        } else {
            url
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.trim_start_matches('[').trim_end_matches(']').to_owned(), p.parse().context("bad port in --url")?)
            }
            _ => (authority.to_owned(), 80),
        };
        if host.is_empty() {
            bail!("no host in --url {url:?}");
        }
        Ok(Self { host, port })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/rtc", self.http_authority())
    }

    /// Janus listens at the root of its WebSocket port.
    pub fn janus_ws_url(&self) -> String {
        format!("ws://{}/", self.http_authority())
    }

    pub fn http_authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("40ms").unwrap(), Duration::from_millis(40));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_rate("100/s").unwrap(), 100.0);
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert!((parse_percent("2%").unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(parse_bandwidth("800kbit").unwrap(), 800_000);
        assert_eq!(parse_bandwidth("2mbit").unwrap(), 2_000_000);
        assert!(parse_bandwidth("1kbit").is_err());
        assert_eq!(parse_churn("5/s").unwrap(), 5.0);
        assert_eq!(parse_churn("120/m").unwrap(), 2.0);
        assert!(parse_churn("51/s").is_err());
        assert!(parse_churn("0").is_err());
    }

    #[test]
    fn parses_urls() {
        let u = ServerUrl::parse("http://127.0.0.1:17880").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 17880));
        assert_eq!(u.ws_url(), "ws://127.0.0.1:17880/rtc");
        assert!(ServerUrl::parse("https://x:1").is_err());
    }
}
