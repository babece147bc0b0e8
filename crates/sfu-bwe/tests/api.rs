//! The public driving surface of `SendSideBwe`, exercised by hand-made feedback, plus simulator
//! properties (determinism, loss response).

use std::time::{Duration, Instant};

use sfu_bwe::sim::{self, CapacitySchedule, FlowConfig, LinkConfig, Scenario};
use sfu_bwe::{Bitrate, BweConfig, ProbeConfig, SendSideBwe, SentPacket, TransportFeedback};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn quiet_config() -> BweConfig {
    BweConfig {
        start_bitrate: Bitrate::mbps(1),
        probe: ProbeConfig { initial: false, periodic_interval: None, ..ProbeConfig::default() },
        ..BweConfig::default()
    }
}

/// Send 1200-byte packets every `gap` for `n` packets, report them all as arriving with a fixed
/// 40 ms delay (`lost_every`: every k-th reported lost), feedback every 50 ms.
fn drive(bwe: &mut SendSideBwe, t0: Instant, gap: Duration, n: u16, lost_every: Option<u16>) -> Instant {
    drive_with(bwe, t0, gap, n, |seq, sent| lost_every.is_none_or(|k| seq % k != 0).then_some(sent + ms(40)))
}

/// Like [`drive`], with each packet's arrival (since `t0`) given by `arrival(seq, sent since t0)`,
/// `None` for lost.
fn drive_with(
    bwe: &mut SendSideBwe,
    t0: Instant,
    gap: Duration,
    n: u16,
    arrival: impl Fn(u16, Duration) -> Option<Duration>,
) -> Instant {
    let mut pending = Vec::new();
    let mut next_fb = t0 + ms(50);
    let mut now = t0;
    for seq in 0..n {
        now = t0 + gap * seq as u32;
        while now >= next_fb {
            if let Some(&(base, _)) = pending.first() {
                let arrivals = pending.drain(..).map(|(_, a)| a).collect();
                bwe.on_feedback(&TransportFeedback { base_seq: base, arrivals }, next_fb);
            }
            next_fb += ms(50);
        }
        bwe.on_packet_sent(SentPacket { transport_seq: seq, size: 1200, at: now, probe_cluster: None });
        pending.push((seq, arrival(seq, now - t0)));
    }
    now
}

/// Run every timeout due up to `until`.
fn advance_to(bwe: &mut SendSideBwe, until: Instant) {
    while let Some(due) = bwe.poll_timeout() {
        if due > until {
            break;
        }
        bwe.handle_timeout(due);
    }
}

#[test]
fn steady_uncongested_feedback_grows_the_estimate() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    // 1.92 Mbit/s offered (1200 bytes / 5 ms), no queuing: the estimate may grow.
    drive(&mut bwe, t0, ms(5), 1000, None);
    let st = bwe.stats();
    assert!(bwe.estimate() > Bitrate::mbps(1), "{st:?}");
    assert!(st.feedback_reports > 50);
    assert!(st.rtt.is_some());
}

#[test]
fn heavy_loss_caps_the_estimate() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    drive(&mut bwe, t0, ms(5), 1000, Some(4)); // 25 % loss
    let st = bwe.stats();
    assert!(st.loss_cap.is_some(), "{st:?}");
    assert!(bwe.estimate() < Bitrate::mbps(1), "{st:?}");
    assert!((st.loss_fraction - 0.25).abs() < 0.05, "{st:?}");
}

#[test]
fn remb_caps_and_expires() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    bwe.on_remb(Bitrate::kbps(400), t0);
    assert_eq!(bwe.estimate(), Bitrate::kbps(400));
    assert_eq!(bwe.stats().remb, Some(Bitrate::kbps(400)));
    advance_to(&mut bwe, t0 + Duration::from_secs(4));
    assert_eq!(bwe.estimate(), Bitrate::kbps(400));
    advance_to(&mut bwe, t0 + Duration::from_secs(6));
    assert_eq!(bwe.estimate(), Bitrate::mbps(1));
}

#[test]
fn requested_probe_is_handed_out_and_counted() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    assert!(!bwe.request_probe(Bitrate::kbps(1050), t0), "not worth a burst");
    assert!(bwe.request_probe(Bitrate::mbps(3), t0));
    let p = bwe.poll_probe(t0).expect("a cluster");
    assert_eq!(p.target, Bitrate::mbps(3));
    assert!(p.min_packets >= 5 && p.min_bytes >= 11_000);
    assert_eq!(bwe.poll_probe(t0), None);
    assert_eq!(bwe.stats().probes_sent, 1);
}

#[test]
fn probe_result_raises_the_estimate() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    assert!(bwe.request_probe(Bitrate::mbps(3), t0));
    let p = bwe.poll_probe(t0).unwrap();
    // 10 packets of 1250 bytes at 3 Mbit/s (3.33 ms apart); the path delivers them at the same pace.
    let gap = Duration::from_micros(3333);
    let mut arrivals = Vec::new();
    for seq in 0..10u16 {
        let at = t0 + gap * seq as u32;
        bwe.on_packet_sent(SentPacket { transport_seq: seq, size: 1250, at, probe_cluster: Some(p.id) });
        arrivals.push(Some(gap * seq as u32 + ms(40)));
    }
    bwe.on_feedback(&TransportFeedback { base_seq: 0, arrivals }, t0 + ms(100));
    let st = bwe.stats();
    assert_eq!(st.probes_succeeded, 1, "{st:?}");
    assert!(bwe.estimate() > Bitrate::kbps(2900), "{st:?}");
}

#[test]
fn silent_feedback_cuts_the_estimate() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    let last = drive(&mut bwe, t0, ms(10), 50, None);
    let before = bwe.estimate();
    // Keep sending, but no feedback ever comes back.
    for i in 1..=200u16 {
        bwe.on_packet_sent(SentPacket {
            transport_seq: 50 + i,
            size: 1200,
            at: last + ms(10) * i as u32,
            probe_cluster: None,
        });
    }
    advance_to(&mut bwe, last + ms(1100));
    let cut = bwe.estimate();
    assert!(cut < before, "{cut} !< {before}");
    // And again a second later.
    advance_to(&mut bwe, last + ms(2200));
    assert!(bwe.estimate() < cut);
}

fn lossy(loss: f64) -> Scenario {
    Scenario {
        name: format!("lossy_{loss}"),
        seed: 1,
        duration: Duration::from_secs(30),
        link: LinkConfig {
            capacity: CapacitySchedule::constant(Bitrate::mbps(2)),
            one_way_delay: ms(50),
            queue_limit: ms(300),
            loss,
            feedback_delay: ms(50),
        },
        flows: vec![FlowConfig::default()],
        sample_interval: ms(100),
    }
}

#[test]
fn simulation_is_deterministic() {
    let a = sim::run(&lossy(0.01), Instant::now());
    let b = sim::run(&lossy(0.01), Instant::now() + Duration::from_secs(7));
    assert_eq!(a.to_csv(), b.to_csv());
}

#[test]
fn random_loss_response() {
    // (random loss, expected range of the mean delivered rate 10-30 s in Mbit/s)
    let cases = [(0.0, 1.6, 2.0), (0.01, 1.5, 2.0), (0.2, 0.0, 1.0)];
    for (loss, lo, hi) in cases {
        let r = sim::run(&lossy(loss), Instant::now());
        let rate = r.flow_rates(10.0, 30.0)[0] / 1e6;
        assert!((lo..=hi).contains(&rate), "loss {loss}: {rate:.2} Mbit/s");
    }
}

/// How the path looked when the last feedback came.
#[derive(Clone, Copy, Debug)]
enum LastVerdict {
    /// A quarter of the packets lost.
    Loss,
    /// Each packet 1.5 ms later than the one before: a queue building up.
    Overuse,
}

/// Drives `verdict` into a fresh estimator (quiet config, but periodic probing on) and returns
/// it with the time of the last packet sent.
fn congested(verdict: LastVerdict, t0: Instant) -> (SendSideBwe, Instant) {
    let config = BweConfig { probe: ProbeConfig { initial: false, ..ProbeConfig::default() }, ..quiet_config() };
    let mut bwe = SendSideBwe::new(config, t0);
    let last = match verdict {
        LastVerdict::Loss => drive(&mut bwe, t0, ms(5), 400, Some(4)),
        LastVerdict::Overuse => drive_with(&mut bwe, t0, ms(10), 140, |seq, sent| {
            Some(sent + ms(40) + Duration::from_micros(1_500 * u64::from(seq.saturating_sub(100))))
        }),
    };
    (bwe, last)
}

/// A congestion verdict is only as fresh as the feedback behind it. After the last feedback
/// said "congested", the sender either goes silent (a paused subscriber gets nothing, so no
/// feedback comes back) or keeps sending unanswered. Silence ages the verdict: after 2 s of it a
/// probe is allowed, requested or periodic. Unanswered sending does not (the path may be broken).
#[test]
fn a_congestion_verdict_goes_stale_once_nothing_is_sent_or_acknowledged() {
    // (last verdict, keep sending without feedback, silence after the last packet,
    //  a requested probe granted, a periodic probe out)
    type Case = (LastVerdict, bool, u64, bool, bool);
    let cases: &[Case] = &[
        (LastVerdict::Loss, false, 500, false, false),
        (LastVerdict::Loss, false, 1_900, false, false),
        (LastVerdict::Loss, false, 2_500, true, true),
        (LastVerdict::Loss, true, 2_500, false, false),
        (LastVerdict::Overuse, false, 1_000, false, false),
        (LastVerdict::Overuse, false, 3_000, true, true),
        (LastVerdict::Overuse, true, 3_000, false, false),
    ];
    for &(verdict, keep_sending, silence, requested, periodic) in cases {
        let name = format!("{verdict:?}, sending {keep_sending}, {silence} ms");
        let t0 = Instant::now();
        let (mut bwe, last) = congested(verdict, t0);
        let st = bwe.stats();
        assert!(st.loss_fraction > 0.1 || st.usage == sfu_bwe::BandwidthUsage::Overuse, "{name}: {st:?}");
        assert!(!bwe.request_probe(bwe.estimate() * 3.0, last), "{name}: refused while fresh");
        bwe.set_desired_bitrate(Some(bwe.estimate() * 3.0), last);
        let end = last + ms(silence);
        let mut seq = 10_000u16;
        let mut at = last;
        while keep_sending && at < end {
            at += ms(20);
            seq += 1;
            bwe.on_packet_sent(SentPacket { transport_seq: seq, size: 1200, at, probe_cluster: None });
            advance_to(&mut bwe, at);
        }
        advance_to(&mut bwe, end);
        let periodic_out = bwe.poll_probe(end).is_some();
        assert_eq!(periodic_out, periodic, "{name}: periodic probe");
        if !periodic_out {
            assert_eq!(bwe.request_probe(bwe.estimate() * 3.0, end), requested, "{name}: requested probe");
        }
        assert_eq!(bwe.stats().verdicts_expired > 0, requested || periodic, "{name}: {:?}", bwe.stats());
    }
}

/// Having sent nothing since the last feedback timeout cut says nothing more about the path:
/// the estimate is cut once, not every second for as long as the sender stays silent.
#[test]
fn a_silent_sender_is_cut_once_for_missing_feedback() {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(quiet_config(), t0);
    let last = drive(&mut bwe, t0, ms(10), 50, None);
    // A few packets after the last feedback, then nothing at all.
    for i in 1..=5u16 {
        bwe.on_packet_sent(SentPacket {
            transport_seq: 50 + i,
            size: 1200,
            at: last + ms(10) * i as u32,
            probe_cluster: None,
        });
    }
    advance_to(&mut bwe, last + ms(1_500));
    let cut = bwe.estimate();
    advance_to(&mut bwe, last + ms(10_000));
    assert_eq!(bwe.estimate(), cut);
}
