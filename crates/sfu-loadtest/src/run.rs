//! The run: plan the participants of a scenario, start the media workers, bring publishers up,
//! ramp the subscribers, let them settle, hold the load for the requested time while sampling
//! every second (and churning subscribers, with `--churn`), then leave and collect the figures.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::churn::{self, Churn, Subscribers};
use crate::cli::{Cli, Scenario, ServerKind, ServerUrl};
use crate::media::link::LinkConfig;
use crate::media::{self, Command, FinalReport, SubscriberSummary, WorkerConfig, WorkerHandle};
use crate::node_report::NodeOutcome;
use crate::nodes::{self, NodeProbe, NodeSnapshot};
use crate::plan::Plan;
use crate::probe::{self, ServerMetrics};
use crate::session::{SessionContext, SignalCounters};
use crate::spawner::Spawner;
use crate::stats::{Histogram, WorkerStats};
use crate::token::Minter;

const PUBLISHER_TIMEOUT: Duration = Duration::from_secs(15);
const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One row of the timeline, sampled every second.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub t: f64,
    pub phase: &'static str,
    pub sessions_started: u64,
    pub joined: u64,
    pub subscribers_connected: u64,
    pub subscribers_with_media: u64,
    pub subscribers_receiving: u64,
    pub rx_pps: f64,
    pub rx_kbps: f64,
    pub loss_pct: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub forwarded_pps: Option<f64>,
    /// Server drops per second by reason (non-zero reasons only).
    pub server_drops_per_s: BTreeMap<String, f64>,
    /// Mean of the server's subscriber bandwidth estimates recorded in this second (if it has BWE).
    pub server_estimate_kbps: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub harness_cpu_pct: f64,
    pub worker_busy_pct: Vec<f64>,
    pub machine_cpu_pct: Option<f64>,
    /// Cumulative churn counts (hold samples of runs with `--churn` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<churn::Totals>,
}

/// Everything the report needs.
pub struct Outcome {
    pub cli: Cli,
    pub plan_rooms: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub timeline: Vec<Sample>,
    pub hold_seconds: f64,
    /// Cumulative worker counters at the start and end of the hold.
    pub hold_start: WorkerStats,
    pub hold_end: WorkerStats,
    pub hold_latency: Histogram,
    pub all_latency: Histogram,
    pub summaries: Vec<SubscriberSummary>,
    pub final_stats: WorkerStats,
    pub metrics_start: Option<ServerMetrics>,
    pub metrics_end: Option<ServerMetrics>,
    pub metrics_error: Option<String>,
    pub server_cpu_hold: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub server_rss_max_mb: Option<f64>,
    pub harness_cpu_hold: f64,
    pub worker_busy_hold: Vec<f64>,
    pub timer_late_max_hold: Duration,
    pub machine_cpu_hold: Option<f64>,
    pub signal: BTreeMap<&'static str, u64>,
    /// Churn counts at the end of the hold, with `--churn`.
    pub churn: Option<churn::Totals>,
    /// Each node's share (one entry per `--url`).
    pub nodes: Vec<NodeOutcome>,
    /// /proc/loadavg at the start and the end of the run (other jobs on the machine show here).
    pub loadavg_start: Option<String>,
    pub loadavg_end: Option<String>,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

struct Sampler {
    workers: Vec<Arc<WorkerHandle>>,
    counters: Arc<SessionContext>,
    /// Each node's /metrics (Janus has none) and process.
    nodes: Vec<NodeProbe>,
    epoch: Instant,
    last_at: Instant,
    last: WorkerStats,
    last_metrics: Option<ServerMetrics>,
    last_server_cpu: Option<f64>,
    last_own_cpu: f64,
    last_machine: Option<(f64, f64)>,
    timeline: Vec<Sample>,
    all_latency: Histogram,
    hold_latency: Histogram,
    holding: bool,
    hold_busy: Vec<Duration>,
    hold_wall: Vec<Duration>,
    hold_late: Duration,
    rss_max: Option<f64>,
    metrics_error: Option<String>,
    tty: bool,
    total_subscribers: usize,
    publishers: u64,
    last_per_worker: Vec<(u64, u64, Option<Instant>)>,
    rates: (f64, f64),
    churn: Option<Arc<churn::Counters>>,
}

impl Sampler {
    /// Cumulative counters of every worker, with the per-interval parts taken out.
    fn gather(&mut self) -> (WorkerStats, Vec<(Duration, Duration)>, Duration) {
        let mut total = WorkerStats::default();
        let mut busy = Vec::new();
        let mut late = Duration::ZERO;
        let mut rates = (0.0, 0.0);
        for (i, w) in self.workers.iter().enumerate() {
            let Ok(mut shared) = w.shared.lock() else { continue };
            total.add(&shared);
            // Rates per worker, against the time the worker wrote its snapshot.
            let now = (shared.rx_packets, shared.rx_bytes, shared.at);
            if let Some(&(p, b, Some(at))) = self.last_per_worker.get(i)
                && let Some(t) = now.2
                && t > at
            {
                let dt = (t - at).as_secs_f64();
                rates.0 += now.0.saturating_sub(p) as f64 / dt;
                rates.1 += now.1.saturating_sub(b) as f64 * 8.0 / 1000.0 / dt;
            }
            if self.last_per_worker.len() <= i {
                self.last_per_worker.push(now);
            } else {
                self.last_per_worker[i] = now;
            }
            busy.push((shared.busy, shared.wall));
            late = late.max(shared.timer_late_max);
            shared.latency.clear();
            shared.joins_ms.clear();
            shared.busy = Duration::ZERO;
            shared.wall = Duration::ZERO;
            shared.timer_late_max = Duration::ZERO;
        }
        self.rates = rates;
        (total, busy, late)
    }

    async fn sample(&mut self, phase: &'static str) -> Sample {
        let now = Instant::now();
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.last_at = now;
        let (stats, busy, late) = self.gather();
        self.all_latency.merge(&stats.latency);
        if self.holding {
            self.hold_latency.merge(&stats.latency);
            for (i, (b, w)) in busy.iter().enumerate() {
                if self.hold_busy.len() <= i {
                    self.hold_busy.push(Duration::ZERO);
                    self.hold_wall.push(Duration::ZERO);
                }
                self.hold_busy[i] += *b;
                self.hold_wall[i] += *w;
            }
            self.hold_late = self.hold_late.max(late);
        }
        let d_expected = stats.rx_expected.saturating_sub(self.last.rx_expected) as f64;
        let d_missing = stats.rx_missing as f64 - self.last.rx_missing as f64;
        let loss_pct = if d_expected > 0.0 { (d_missing / d_expected * 100.0).max(0.0) } else { 0.0 };

        let (metrics, error) = nodes::read_all(&mut self.nodes).await;
        if let Some(e) = error {
            self.metrics_error.get_or_insert(e);
        }
        let forwarded_pps = match (&metrics, &self.last_metrics) {
            (Some(m), Some(l)) => Some((m.forwarded_packets - l.forwarded_packets) / dt),
            _ => None,
        };
        let server_estimate_kbps = match (&metrics, &self.last_metrics) {
            (Some(m), Some(l)) if m.estimate_count > l.estimate_count => Some(
                ((m.estimate_sum - l.estimate_sum) / (m.estimate_count - l.estimate_count) / 1000.0 * 10.0).round()
                    / 10.0,
            ),
            _ => None,
        };
        let server_drops: BTreeMap<String, f64> = match (&metrics, &self.last_metrics) {
            (Some(m), Some(l)) => m
                .since(l)
                .dropped_by_reason
                .into_iter()
                .filter(|(_, v)| *v > 0.0)
                .map(|(k, v)| (k, (v / dt * 10.0).round() / 10.0))
                .collect(),
            _ => BTreeMap::new(),
        };
        if metrics.is_some() {
            self.last_metrics = metrics;
        }
        let server_cpu = nodes::cpu_sum(&self.nodes);
        let server_cpu_pct = match (server_cpu, self.last_server_cpu) {
            (Some(c), Some(l)) => Some((c - l) / dt * 100.0),
            _ => None,
        };
        self.last_server_cpu = server_cpu;
        let rss = rss_sum(&self.nodes);
        if let Some(r) = rss {
            self.rss_max = Some(self.rss_max.map_or(r, |m: f64| m.max(r)));
        }
        let own = probe::process_cpu_seconds(std::process::id()).unwrap_or(0.0);
        let harness_cpu_pct = (own - self.last_own_cpu) / dt * 100.0;
        self.last_own_cpu = own;
        let machine = probe::machine_cpu();
        let machine_cpu_pct = match (machine, self.last_machine) {
            (Some((t, i)), Some((lt, li))) if t > lt => Some((1.0 - (i - li) / (t - lt)) * 100.0),
            _ => None,
        };
        self.last_machine = machine;

        let q = |h: &Histogram, p: f64| h.quantile(p).map(|us| us as f64 / 1000.0);
        let c = &self.counters.counters;
        let sample = Sample {
            t: now.duration_since(self.epoch).as_secs_f64(),
            phase,
            sessions_started: c.started.load(std::sync::atomic::Ordering::Relaxed),
            joined: c.joined.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(self.publishers),
            subscribers_connected: stats.subscribers_connected,
            subscribers_with_media: stats.subscribers_with_media,
            subscribers_receiving: stats.subscribers_receiving,
            rx_pps: self.rates.0,
            rx_kbps: self.rates.1,
            loss_pct,
            latency_p50_ms: q(&stats.latency, 0.5),
            latency_p95_ms: q(&stats.latency, 0.95),
            latency_p99_ms: q(&stats.latency, 0.99),
            forwarded_pps,
            server_drops_per_s: server_drops,
            server_estimate_kbps,
            server_cpu_pct,
            server_rss_mb: rss,
            harness_cpu_pct,
            worker_busy_pct: busy
                .iter()
                .map(|(b, w)| if w.is_zero() { 0.0 } else { b.as_secs_f64() / w.as_secs_f64() * 100.0 })
                .collect(),
            machine_cpu_pct,
            churn: self.churn.as_ref().map(|c| c.totals()),
        };
        self.last = stats;
        self.print(&sample);
        self.timeline.push(sample.clone());
        sample
    }

    fn print(&self, s: &Sample) {
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        let busy: Vec<String> = s.worker_busy_pct.iter().map(|b| format!("{b:.0}")).collect();
        let line = format!(
            "[{:>5.1}s {:<6}] subs {}/{} conn {} media {} now {} | rx {:.0} pps {:.0} kbit/s loss {:.2}% | lat p50 {} p99 {} ms | srv fwd {} pps cpu {}% rss {} MB | harness cpu {:.0}% busy [{}]%",
            s.t,
            s.phase,
            s.joined,
            self.total_subscribers,
            s.subscribers_connected,
            s.subscribers_with_media,
            s.subscribers_receiving,
            s.rx_pps,
            s.rx_kbps,
            s.loss_pct,
            opt(s.latency_p50_ms, 2),
            opt(s.latency_p99_ms, 2),
            opt(s.forwarded_pps, 0),
            opt(s.server_cpu_pct, 0),
            opt(s.server_rss_mb, 0),
            s.harness_cpu_pct,
            busy.join(" "),
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// The resident memory of every node with a PID, summed.
fn rss_sum(nodes: &[NodeProbe]) -> Option<f64> {
    let pids: Vec<u32> = nodes.iter().filter_map(|n| n.pid).collect();
    if pids.is_empty() {
        return None;
    }
    pids.into_iter().map(probe::rss_mb).sum()
}

/// The address this host uses to reach `url` (so candidates name a reachable local address).
async fn local_ip_for(url: &ServerUrl) -> anyhow::Result<(IpAddr, SocketAddr)> {
    let host = if url.host == "localhost" { "127.0.0.1" } else { url.host.as_str() };
    let server: SocketAddr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, url.port),
        Err(_) => tokio::net::lookup_host((host, url.port))
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?,
    };
    let any: SocketAddr =
        if server.is_ipv4() { SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0) } else { "[::]:0".parse()? };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(server)?;
    Ok((probe.local_addr()?.ip(), server))
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let node_list = nodes::parse_nodes(&cli.urls, &cli.server_pids, cli.server)?;
    if cli.server == ServerKind::Janus && cli.scenario == Scenario::Meeting {
        anyhow::bail!(
            "--server janus runs livestream and audio-room only (meeting participants both publish and subscribe)"
        );
    }
    let plan = Plan::new(&cli, node_list.len())?;
    // One local address for every node: a cluster under test is reached over the same interface.
    let (local_ip, _server) = local_ip_for(&node_list[0].address).await?;
    // Fail fast when nothing answers at --url (the server may still be starting: retry 5 s).
    if cli.server == ServerKind::Sfu {
        for node in &node_list {
            let mut attempts = 0;
            loop {
                match probe::http_get(&node.address.http_authority(), "/healthz").await {
                    Ok(_) => break,
                    Err(e) if attempts >= 50 => {
                        anyhow::bail!("the server at {} does not answer GET /healthz: {e:#}", node.url)
                    }
                    Err(_) => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }
    let epoch = Instant::now();
    let mut notes = Vec::new();
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
    };
    let loadavg_start = loadavg();

    let link = LinkConfig {
        loss: cli.loss.unwrap_or(0.0),
        rate_bps: cli.bandwidth,
        delay: cli.delay.unwrap_or(Duration::ZERO),
    };
    let worker_count = cli.workers.max(1);
    let mut workers = Vec::new();
    for i in 0..worker_count {
        workers.push(Arc::new(media::spawn(i, WorkerConfig { local_ip, epoch, link, seed: cli.seed })?));
    }

    let ctx = Arc::new(SessionContext {
        server: cli.server,
        ws_urls: node_list
            .iter()
            .map(|n| match cli.server {
                ServerKind::Sfu => n.address.ws_url(),
                ServerKind::Janus => n.address.janus_ws_url(),
            })
            .collect(),
        minter: Minter::new(&cli.api_key, &cli.api_secret),
        layer: cli.layer.preference(),
        counters: SignalCounters::default(),
        failure_log: Default::default(),
    });
    // Publishers stop on one signal; each subscriber has its own (churn stops them one by one).
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut spawner = Spawner::new(ctx.clone(), workers.clone());
    let mut subscribers = Subscribers::new();

    let mut sampler = Sampler {
        workers: workers.clone(),
        counters: ctx.clone(),
        nodes: node_list.iter().map(|n| NodeProbe::new(n, cli.server == ServerKind::Sfu)).collect(),
        epoch,
        last_at: Instant::now(),
        last: WorkerStats::default(),
        last_metrics: None,
        last_server_cpu: None,
        last_own_cpu: probe::process_cpu_seconds(std::process::id()).unwrap_or(0.0),
        last_machine: probe::machine_cpu(),
        timeline: Vec::new(),
        all_latency: Histogram::default(),
        hold_latency: Histogram::default(),
        holding: false,
        hold_busy: Vec::new(),
        hold_wall: Vec::new(),
        hold_late: Duration::ZERO,
        rss_max: None,
        metrics_error: (cli.server == ServerKind::Janus).then(|| "janus has no /metrics".to_owned()),
        tty: std::io::stderr().is_terminal(),
        total_subscribers: plan.subscribers.len(),
        publishers: plan.publishers.len() as u64,
        last_per_worker: Vec::new(),
        rates: (0.0, 0.0),
        churn: None,
    };
    for pid in &cli.server_pids {
        if probe::process_cpu_seconds(*pid).is_none() {
            notes.push(format!("--server-pid {pid}: no such process readable in /proc; server CPU/RSS omitted"));
        }
    }
    if cli.server == ServerKind::Sfu {
        sampler.last_metrics = nodes::read_all(&mut sampler.nodes).await.0;
    }
    sampler.last_server_cpu = nodes::cpu_sum(&sampler.nodes);
    let mut next_sample = Instant::now() + SAMPLE_EVERY;

    // 1. Publishers, then wait until their connections are up.
    let publishers = plan.publishers.len();
    for seat in plan.publishers.iter().cloned() {
        spawner.spawn(seat.node, seat.room, seat.identity, seat.publish, false, stop_rx.clone());
    }
    if publishers > 0 {
        let deadline = Instant::now() + PUBLISHER_TIMEOUT;
        loop {
            let connected: u64 =
                workers.iter().filter_map(|w| w.shared.lock().ok().map(|s| s.publishers_connected)).sum();
            if connected as usize >= publishers {
                break;
            }
            if Instant::now() >= deadline {
                notes.push(format!(
                    "only {connected} of {publishers} publishers connected within {PUBLISHER_TIMEOUT:?}"
                ));
                break;
            }
            if Instant::now() >= next_sample {
                sampler.sample("setup").await;
                next_sample += SAMPLE_EVERY;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the first keyframes through before anyone subscribes.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 2. Ramp.
    let ramp_start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / cli.ramp);
    let total = plan.subscribers.len();
    for (i, seat) in plan.subscribers.iter().cloned().enumerate() {
        let at = ramp_start + gap * i as u32;
        loop {
            let now = Instant::now();
            if now >= next_sample {
                sampler.sample("ramp").await;
                next_sample += SAMPLE_EVERY;
                continue;
            }
            if now >= at {
                break;
            }
            tokio::time::sleep(at.min(next_sample) - now).await;
        }
        subscribers.spawn(&mut spawner, seat.node, seat.room, seat.identity, seat.publish);
    }

    // 3. Settle: wait (bounded) until every subscriber receives media.
    // With video published, "settled" means every subscriber also saw a keyframe.
    let video = match cli.scenario {
        Scenario::AudioRoom => false,
        Scenario::Livestream | Scenario::Meeting => true,
    };
    let settle_deadline = Instant::now() + cli.settle;
    loop {
        let (mut with_media, mut with_keyframe) = (0u64, 0u64);
        for w in &workers {
            if let Ok(s) = w.shared.lock() {
                with_media += s.subscribers_with_media;
                with_keyframe += s.subscribers_with_keyframe;
            }
        }
        let settled = with_media as usize >= total && (!video || with_keyframe as usize >= total);
        if settled || Instant::now() >= settle_deadline {
            break;
        }
        if Instant::now() >= next_sample {
            sampler.sample("settle").await;
            next_sample += SAMPLE_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warmup_end = Instant::now() + cli.warmup;
    loop {
        let now = Instant::now();
        if now >= warmup_end {
            break;
        }
        if now >= next_sample {
            sampler.sample("settle").await;
            next_sample += SAMPLE_EVERY;
            continue;
        }
        tokio::time::sleep(next_sample.min(warmup_end) - now).await;
    }

    // 4. Hold.
    sampler.sample("settle").await;
    next_sample = Instant::now() + SAMPLE_EVERY;
    let hold_start_at = Instant::now();
    let hold_start = sampler.last.clone();
    let metrics_start = sampler.last_metrics.clone();
    let nodes_start: Vec<NodeSnapshot> = sampler.nodes.iter().map(NodeProbe::snapshot).collect();
    let server_cpu_start = sampler.last_server_cpu;
    let own_cpu_start = sampler.last_own_cpu;
    let machine_start = sampler.last_machine;
    sampler.holding = true;
    let mut churn = Churn::new(cli.churn.unwrap_or(0.0), subscribers);
    if cli.churn.is_some() {
        sampler.churn = Some(churn.counters.clone());
    }
    let hold_end_at = hold_start_at + cli.duration;
    loop {
        let now = Instant::now();
        if now >= hold_end_at {
            break;
        }
        let churn_at = hold_start_at.checked_add(churn.next_at()).unwrap_or(hold_end_at);
        tokio::time::sleep(next_sample.min(hold_end_at).min(churn_at) - now).await;
        churn.tick(hold_start_at.elapsed(), &mut spawner);
        while let Some(end) = spawner.sessions.try_join_next() {
            if let Ok(end) = end {
                churn.on_end(end);
            }
        }
        if Instant::now() >= next_sample || Instant::now() >= hold_end_at {
            sampler.sample("hold").await;
            next_sample += SAMPLE_EVERY;
        }
    }
    sampler.holding = false;
    let churn_totals = cli.churn.map(|_| churn.finish());
    let hold_seconds = sampler.last_at.duration_since(hold_start_at).as_secs_f64();
    let hold_end = sampler.last.clone();
    let metrics_end = sampler.last_metrics.clone();
    let nodes_end: Vec<NodeSnapshot> = sampler.nodes.iter().map(NodeProbe::snapshot).collect();
    let server_cpu_hold = match (sampler.last_server_cpu, server_cpu_start) {
        (Some(e), Some(s)) if hold_seconds > 0.0 => Some((e - s) / hold_seconds * 100.0),
        _ => None,
    };
    let harness_cpu_hold =
        if hold_seconds > 0.0 { (sampler.last_own_cpu - own_cpu_start) / hold_seconds * 100.0 } else { 0.0 };
    let machine_cpu_hold = match (sampler.last_machine, machine_start) {
        (Some((t, i)), Some((lt, li))) if t > lt => Some((1.0 - (i - li) / (t - lt)) * 100.0),
        _ => None,
    };
    let server_rss_mb = rss_sum(&sampler.nodes);
    let nodes_rss: Vec<Option<f64>> = node_list.iter().map(|n| n.pid.and_then(probe::rss_mb)).collect();

    // 5. Leave, then stop the workers.
    if sampler.tty {
        eprintln!();
    }
    let _ = stop_tx.send(true);
    churn.stop_all();
    let sessions = &mut spawner.sessions;
    let leave_deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
    while !sessions.is_empty() {
        match tokio::time::timeout_at(leave_deadline, sessions.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                notes.push(format!("{} sessions did not leave within {LEAVE_TIMEOUT:?}", sessions.len()));
                sessions.abort_all();
                break;
            }
        }
    }
    let mut reports: Vec<FinalReport> = Vec::new();
    for w in &workers {
        let (tx, rx) = tokio::sync::oneshot::channel();
        w.send(Command::Finish { reply: tx });
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(10), rx).await {
            reports.push(r);
        }
    }
    let mut final_stats = WorkerStats::default();
    let mut summaries = Vec::new();
    for r in reports {
        final_stats.add(&r.stats);
        summaries.extend(r.subscribers);
    }
    drop(sampler.workers.drain(..));
    spawner.workers.clear();
    for w in workers {
        if let Ok(mut w) = Arc::try_unwrap(w) {
            w.join();
        }
    }

    let c = &ctx.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let signal = BTreeMap::from([
        ("sessions_started", load(&c.started)),
        ("ws_connected", load(&c.ws_connected)),
        ("joined", load(&c.joined)),
        ("subscriber_offers_answered", load(&c.offers_answered)),
        ("publisher_answers", load(&c.publisher_answers)),
        ("server_errors", load(&c.server_errors)),
        ("session_failures", load(&c.failures)),
        ("closed_by_server", load(&c.closed_by_server)),
    ]);
    let failures = ctx.failure_log.lock().map(|l| l.clone()).unwrap_or_default();
    let worker_busy_hold = sampler
        .hold_busy
        .iter()
        .zip(&sampler.hold_wall)
        .map(|(b, w)| if w.is_zero() { 0.0 } else { b.as_secs_f64() / w.as_secs_f64() * 100.0 })
        .collect();

    let per_node = plan.per_node(node_list.len());
    let node_outcomes = node_list
        .iter()
        .zip(nodes_start.into_iter().zip(nodes_end))
        .enumerate()
        .map(|(i, (node, (start, end)))| {
            // A subscriber connection's id is its participant's id times two, plus one.
            let mine: Vec<&SubscriberSummary> =
                summaries.iter().filter(|s| spawner.placement.get((s.conn / 2) as usize) == Some(&i)).collect();
            NodeOutcome {
                url: node.url.clone(),
                pid: node.pid,
                publishers: per_node[i].0,
                subscribers: per_node[i].1,
                start,
                end,
                rss_mb: nodes_rss[i],
                with_media: mine.iter().filter(|s| s.received > 0).count(),
                expected: mine.iter().map(|s| s.expected).sum(),
                missing: mine.iter().map(|s| s.missing).sum(),
            }
        })
        .collect();

    Ok(Outcome {
        plan_rooms: plan.rooms,
        publishers: if cli.scenario == Scenario::Meeting { total } else { publishers },
        subscribers: total,
        timeline: std::mem::take(&mut sampler.timeline),
        hold_seconds,
        hold_start,
        hold_end,
        hold_latency: sampler.hold_latency.clone(),
        all_latency: sampler.all_latency.clone(),
        summaries,
        final_stats,
        metrics_start,
        metrics_end,
        metrics_error: sampler.metrics_error.clone(),
        server_cpu_hold,
        server_rss_mb,
        server_rss_max_mb: sampler.rss_max,
        harness_cpu_hold,
        worker_busy_hold,
        timer_late_max_hold: sampler.hold_late,
        machine_cpu_hold,
        signal,
        churn: churn_totals,
        nodes: node_outcomes,
        loadavg_start,
        loadavg_end: loadavg(),
        failures,
        notes,
        cli,
    })
}
