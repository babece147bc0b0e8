//! The end of a run: a markdown table on stdout, a JSON document, and the verdict on what limited
//! the run (the harness, the machine, or the server).

use serde_json::{Value, json};

use crate::node_report::{self, NodeFigures};
use crate::run::Outcome;
use crate::stats::percentile;

/// A worker busier than this for the hold means the harness, not the server, set the pace.
const WORKER_SATURATED_PCT: f64 = 90.0;
const MACHINE_SATURATED_PCT: f64 = 95.0;

fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

fn opt(v: Option<f64>, digits: i32) -> Value {
    v.map_or(Value::Null, |v| json!(round(v, digits)))
}

pub struct Verdict {
    pub bottleneck: &'static str,
    pub message: String,
}

pub fn verdict(o: &Outcome, loss_pct: f64) -> Verdict {
    let busiest = o.worker_busy_hold.iter().copied().fold(0.0, f64::max);
    let skipped = o.hold_end.frames_skipped.saturating_sub(o.hold_start.frames_skipped);
    let late_ms = o.timer_late_max_hold.as_secs_f64() * 1000.0;
    let mut reasons = Vec::new();
    if busiest >= WORKER_SATURATED_PCT {
        reasons.push(format!("a media worker was busy {busiest:.0}% of the hold"));
    }
    if skipped > 0 {
        reasons.push(format!("publishers skipped {skipped} frames because their worker fell behind"));
    }
    if late_ms > 100.0 {
        reasons.push(format!("worker timers ran up to {late_ms:.0} ms late"));
    }
    if !reasons.is_empty() {
        let contention = match o.machine_cpu_hold {
            Some(m) if m >= MACHINE_SATURATED_PCT => format!(
                " The machine's CPUs were {m:.0}% busy, so the harness threads were also starved by the server and any other process."
            ),
            _ => String::new(),
        };
        return Verdict {
            bottleneck: "harness",
            message: format!(
                "THE HARNESS IS THE BOTTLENECK: {}. Figures measure the harness, not the server; use fewer subscribers per process, more --workers, or another machine.{contention}",
                reasons.join("; ")
            ),
        };
    }
    if let Some(machine) = o.machine_cpu_hold
        && machine >= MACHINE_SATURATED_PCT
    {
        return Verdict {
            bottleneck: "machine",
            message: format!(
                "The machine's CPUs were {machine:.0}% busy: server and harness compete for the same cores, so neither figure is a clean capacity number."
            ),
        };
    }
    let impaired = o.final_stats.impair_dropped_loss + o.final_stats.impair_dropped_queue;
    if loss_pct >= 1.0 && impaired > 0 {
        return Verdict {
            bottleneck: "impairment",
            message: format!(
                "Loss {loss_pct:.2}% while the harness's own impairment dropped {impaired} datagrams ({} random, {} at the bottleneck queue): the configured link limits delivery.",
                o.final_stats.impair_dropped_loss, o.final_stats.impair_dropped_queue
            ),
        };
    }
    if loss_pct >= 1.0 {
        return Verdict {
            bottleneck: "server",
            message: format!(
                "Loss {loss_pct:.2}% with the harness below saturation: the server (or the impairment) is dropping media."
            ),
        };
    }
    Verdict { bottleneck: "none", message: "No saturation detected.".into() }
}

pub fn build(o: &Outcome) -> (Value, String) {
    let hs = &o.hold_start;
    let he = &o.hold_end;
    // Loss over the whole run (every packet any subscriber should have received), and over the
    // hold alone.
    let loss_all = if he.rx_expected > 0 { he.rx_missing as f64 / he.rx_expected as f64 * 100.0 } else { 0.0 };
    let d_expected = he.rx_expected.saturating_sub(hs.rx_expected) as f64;
    let d_missing = (he.rx_missing as f64 - hs.rx_missing as f64).max(0.0);
    let loss_hold = if d_expected > 0.0 { d_missing / d_expected * 100.0 } else { 0.0 };

    let ratio = |missing: u64, expected: u64| if expected > 0 { missing as f64 / expected as f64 * 100.0 } else { 0.0 };
    let loss_video = ratio(he.rx_video_missing, he.rx_video_expected);
    let loss_audio =
        ratio(he.rx_missing.saturating_sub(he.rx_video_missing), he.rx_expected.saturating_sub(he.rx_video_expected));
    let with_media = o.summaries.iter().filter(|s| s.received > 0).count();
    let with_keyframe = o.summaries.iter().filter(|s| s.keyframe).count();
    // Connected at the end of the hold (connections close when the sessions leave).
    let connected = he.subscribers_connected as usize;
    let ever_connected = o.summaries.iter().filter(|s| s.connected).count();
    let mut joins: Vec<f64> = o.summaries.iter().filter_map(|s| s.join_ms).collect();
    let worst_loss = o
        .summaries
        .iter()
        .filter(|s| s.expected > 0)
        .map(|s| s.missing as f64 / s.expected as f64 * 100.0)
        .fold(0.0, f64::max);
    let latency = if o.hold_latency.count() > 0 { &o.hold_latency } else { &o.all_latency };
    let lat = |q: f64| latency.quantile(q).map(|us| us as f64 / 1000.0);
    let secs = o.hold_seconds.max(1e-3);
    let rx_pps = (he.rx_packets.saturating_sub(hs.rx_packets)) as f64 / secs;
    let rx_kbps = (he.rx_bytes.saturating_sub(hs.rx_bytes)) as f64 * 8.0 / 1000.0 / secs;
    let metrics = match (&o.metrics_end, &o.metrics_start) {
        (Some(e), Some(s)) => Some(e.since(s)),
        _ => None,
    };
    let forwarded_pps = metrics.as_ref().map(|m| m.forwarded_packets / secs);
    let drops: serde_json::Map<String, Value> = metrics
        .as_ref()
        .map(|m| m.dropped_by_reason.iter().map(|(k, v)| (k.clone(), json!(*v as u64))).collect())
        .unwrap_or_default();
    let verdict = verdict(o, loss_all);
    let layers = [
        he.rx_layers[0].saturating_sub(hs.rx_layers[0]),
        he.rx_layers[1].saturating_sub(hs.rx_layers[1]),
        he.rx_layers[2].saturating_sub(hs.rx_layers[2]),
    ];
    let c = &o.cli;
    let nodes: Vec<NodeFigures> = o.nodes.iter().map(|n| node_report::figures(n, o.hold_seconds)).collect();
    // With churn, every replacement is a subscriber session of its own.
    let sessions = o.subscribers + o.churn.map_or(0, |t| t.joins as usize);

    let doc = json!({
        "scenario": c.scenario.name(),
        "server_kind": c.server.name(),
        "url": c.urls.join(","),
        "subscribers": o.subscribers,
        "publishers": o.publishers,
        "rooms": o.plan_rooms,
        "layer": c.layer.name(),
        "duration_s": round(o.hold_seconds, 2),
        "ramp_per_s": c.ramp,
        "workers": o.worker_busy_hold.len(),
        "impairment": {
            "loss_pct": c.loss.map(|l| round(l * 100.0, 3)),
            "bandwidth_bps": c.bandwidth,
            "delay_ms": c.delay.map(|d| d.as_secs_f64() * 1000.0),
            "dropped_by_loss": o.final_stats.impair_dropped_loss,
            "dropped_by_queue": o.final_stats.impair_dropped_queue,
        },
        "subscribers_connected": connected,
        "subscribers_ever_connected": ever_connected,
        "connection_drops": o.final_stats.disconnects,
        "subscribers_with_media": with_media,
        "subscribers_with_keyframe": with_keyframe,
        "loss_pct": round(loss_all, 4),
        "loss_pct_hold": round(loss_hold, 4),
        "loss_pct_video": round(loss_video, 4),
        "loss_pct_audio": round(loss_audio, 4),
        "worst_subscriber_loss_pct": round(worst_loss, 4),
        "latency_ms": { "p50": opt(lat(0.5), 3), "p95": opt(lat(0.95), 3), "p99": opt(lat(0.99), 3), "max": opt(lat(1.0), 3) },
        "join_ms": {
            "p50": opt(percentile(&mut joins, 0.5), 1),
            "p99": opt(percentile(&mut joins, 0.99), 1),
            "max": opt(percentile(&mut joins, 1.0), 1),
            "count": joins.len(),
        },
        "received_pps": round(rx_pps, 1),
        "received_kbps": round(rx_kbps, 1),
        "received_video_packets_by_layer": { "low": layers[0], "medium": layers[1], "high": layers[2] },
        "duplicates": he.rx_duplicates,
        "rtx_packets_received": he.rx_rtx,
        "plis_sent": he.plis_sent,
        "plis_received_by_publishers": he.plis_received,
        "keyframes_received": he.keyframes_rx,
        // Share of media the subscribers opened themselves rather than through the stack.
        "harness_own_receive_pct": if he.rx_packets > 0 { json!(round(100.0 * he.rx_fast as f64 / he.rx_packets as f64, 1)) } else { Value::Null },
        "harness_own_receive_off": he.fast_rx_off,
        "forwarded_pps": opt(forwarded_pps, 1),
        // Measured by the server itself, so free of the harness's own queueing.
        "server_forward_delay_ms": {
            "p50": opt(metrics.as_ref().and_then(|m| m.forward_delay_p50).map(|s| s * 1000.0), 3),
            "p99": opt(metrics.as_ref().and_then(|m| m.forward_delay_p99).map(|s| s * 1000.0), 3),
        },
        // The same up to each packet's last copy: how long one fan-out takes.
        "server_fanout_delay_ms": {
            "p50": opt(metrics.as_ref().and_then(|m| m.fanout_delay_p50).map(|s| s * 1000.0), 3),
            "p99": opt(metrics.as_ref().and_then(|m| m.fanout_delay_p99).map(|s| s * 1000.0), 3),
        },
        "server_cpu_pct": opt(o.server_cpu_hold, 1),
        "server_rss_mb": opt(o.server_rss_mb, 1),
        "server_rss_max_mb": opt(o.server_rss_max_mb, 1),
        "server_drops": drops,
        "server": metrics.as_ref().map(|m| json!({
            "forwarded_packets": m.forwarded_packets as u64,
            "received_packets": m.received_packets as u64,
            "udp_send_failures": m.udp_send_failures as u64,
            "nacks_received": m.nack_received as u64,
            "retransmitted_packets": m.retransmitted as u64,
            "plis_sent": m.pli_sent as u64,
            "unroutable_datagrams": m.unroutable as u64,
            "transport_cc_reports": m.estimate_count as u64,
            "mean_subscriber_estimate_kbps": if m.estimate_count > 0.0 { json!(round(m.estimate_sum / m.estimate_count / 1000.0, 1)) } else { Value::Null },
            "allocation_layer_changes": m.allocation_switches as u64,
            "bwe_probe_packets": m.probe_packets as u64,
            "video_pauses_for_bandwidth": m.bandwidth_pauses as u64,
        })),
        "metrics_error": o.metrics_error,
        "harness_cpu_pct": round(o.harness_cpu_hold, 1),
        "harness_worker_busy_pct": o.worker_busy_hold.iter().map(|b| round(*b, 1)).collect::<Vec<_>>(),
        "harness_timer_late_max_ms": round(o.timer_late_max_hold.as_secs_f64() * 1000.0, 1),
        "harness_frames_skipped": he.frames_skipped.saturating_sub(hs.frames_skipped),
        "harness_send_errors": o.final_stats.send_errors,
        "machine_cpu_pct": opt(o.machine_cpu_hold, 1),
        "machine_loadavg": { "start": o.loadavg_start, "end": o.loadavg_end },
        "bottleneck": verdict.bottleneck,
        "verdict": verdict.message,
        "signaling": o.signal,
        "churn": o.churn.map(|t| json!({
            "rate_per_s": c.churn,
            "leaves": t.leaves,
            "left": t.left,
            "leave_errors": t.leave_errors,
            "joins": t.joins,
            "joined": t.joined,
            "join_failures": t.join_failures,
            "skipped": t.skipped,
        })),
        "failures": o.failures,
        "notes": o.notes,
        // One entry per --url node (publishers on the first, subscribers round-robin).
        "nodes": nodes,
        "timeline": o.timeline,
    });

    let fmt = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    let mut md = String::new();
    md.push_str(&format!(
        "\n## sfu-loadtest {} against {} — {} subscribers, {} publishers, {} rooms, layer {}, hold {:.1} s\n\n",
        c.scenario.name(),
        c.server.name(),
        o.subscribers,
        o.publishers,
        o.plan_rooms,
        c.layer.name(),
        o.hold_seconds
    ));
    md.push_str("| metric | value |\n|---|---|\n");
    let mut row = |k: &str, v: String| md.push_str(&format!("| {k} | {v} |\n"));
    row(
        "subscribers connected at end / with media / with keyframe",
        format!("{connected} / {with_media} / {with_keyframe} of {sessions}"),
    );
    if let Some(t) = o.churn {
        row(
            &format!(
                "churn at {}/s: leaves (ended cleanly / on error) / joins (joined / failed) / skipped",
                c.churn.unwrap_or(0.0)
            ),
            format!(
                "{} ({} / {}) / {} ({} / {}) / {}",
                t.leaves, t.left, t.leave_errors, t.joins, t.joined, t.join_failures, t.skipped
            ),
        );
    }
    if o.final_stats.disconnects > 0 {
        row("connection drops (connected -> disconnected)", o.final_stats.disconnects.to_string());
    }
    row(
        "loss % (whole run / hold / worst subscriber)",
        format!("{:.3} / {:.3} / {:.3}", loss_all, loss_hold, worst_loss),
    );
    row("loss % video / audio (whole run; audio is not NACKed)", format!("{loss_video:.3} / {loss_audio:.3}"));
    row(
        "latency ms p50 / p95 / p99",
        format!(
            "{} / {} / {}",
            fmt(&doc["latency_ms"]["p50"]),
            fmt(&doc["latency_ms"]["p95"]),
            fmt(&doc["latency_ms"]["p99"])
        ),
    );
    if !doc["server_forward_delay_ms"]["p50"].is_null() {
        row(
            "server forwarding delay ms p50 / p99 per copy (socket read to send, worst shard, last minute)",
            format!(
                "{} / {}",
                fmt(&doc["server_forward_delay_ms"]["p50"]),
                fmt(&doc["server_forward_delay_ms"]["p99"])
            ),
        );
        row(
            "server fan-out delay ms p50 / p99 (socket read to a packet's last copy sent)",
            format!("{} / {}", fmt(&doc["server_fanout_delay_ms"]["p50"]), fmt(&doc["server_fanout_delay_ms"]["p99"])),
        );
    }
    row(
        "join ms p50 / p99 (WebSocket connect to first media)",
        format!("{} / {}", fmt(&doc["join_ms"]["p50"]), fmt(&doc["join_ms"]["p99"])),
    );
    row("received pps / kbit/s (all subscribers)", format!("{rx_pps:.0} / {rx_kbps:.0}"));
    row("video packets by layer low / medium / high", format!("{} / {} / {}", layers[0], layers[1], layers[2]));
    row("server forwarded pps", fmt(&doc["forwarded_pps"]));
    if let Some(m) = metrics.as_ref().filter(|m| m.estimate_count > 0.0) {
        row(
            "server BWE: transport-cc reports / mean estimate kbit/s / layer changes",
            format!(
                "{} / {:.0} / {}",
                m.estimate_count as u64,
                m.estimate_sum / m.estimate_count / 1000.0,
                m.allocation_switches as u64
            ),
        );
    }
    row("server CPU % / RSS MB", format!("{} / {}", fmt(&doc["server_cpu_pct"]), fmt(&doc["server_rss_mb"])));
    let nonzero: Vec<String> =
        drops.iter().filter(|(_, v)| v.as_u64() != Some(0)).map(|(k, v)| format!("{k} {v}")).collect();
    let drops_text = if nonzero.is_empty() { "none".to_owned() } else { nonzero.join(", ") };
    row("server drops by reason (hold)", drops_text);
    row(
        "harness CPU % (worker busy %)",
        format!(
            "{:.0} ({})",
            o.harness_cpu_hold,
            o.worker_busy_hold.iter().map(|b| format!("{b:.0}")).collect::<Vec<_>>().join(", ")
        ),
    );
    row("machine CPU %", fmt(&doc["machine_cpu_pct"]));
    row(
        "media opened on the harness's own path % (subscribers where it was off)",
        format!("{} ({})", fmt(&doc["harness_own_receive_pct"]), he.fast_rx_off),
    );
    row("PLIs sent by subscribers / received by publishers", format!("{} / {}", he.plis_sent, he.plis_received));
    if c.loss.is_some() || c.bandwidth.is_some() || c.delay.is_some() {
        row(
            "impairment drops (loss / queue)",
            format!("{} / {}", o.final_stats.impair_dropped_loss, o.final_stats.impair_dropped_queue),
        );
    }
    row("bottleneck", format!("{} — {}", verdict.bottleneck, verdict.message));
    if !o.failures.is_empty() {
        row("session failures (first)", o.failures.iter().take(3).cloned().collect::<Vec<_>>().join("; "));
    }
    for n in &o.notes {
        row("note", n.clone());
    }
    // A single server's figures are all in the table above.
    if nodes.len() > 1 {
        md.push_str(&node_report::markdown(&nodes));
    }
    (doc, md)
}
