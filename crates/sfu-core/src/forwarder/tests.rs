use std::time::{Duration, Instant};

use sfu_proto::{LayerPreference, SubscriptionSettings, TrackKind};

use super::*;
use crate::test_rng::Lcg;
use DropReason::{
    AwaitingKeyframe, Duplicate, NoLayerAvailable, NotLoudest, NotTargetLayer, OutOfOrderTooOld, Padding, Paused,
    PausedForBandwidth,
};
use LayerPreference::{High, Low};

const SIMULCAST3: &[Option<(u16, u16)>] = &[Some((320, 180)), Some((640, 360)), Some((1280, 720))];

/// SSRC of a layer in these tests, unless a test says otherwise.
fn ssrc_of(layer: u8) -> u32 {
    1000 + u32::from(layer)
}

fn delta(layer: u8, seq: u16, timestamp: u32) -> PacketMeta {
    PacketMeta {
        layer,
        ssrc: ssrc_of(layer),
        seq,
        timestamp,
        marker: false,
        keyframe: false,
        padding_only: false,
        vp8: None,
    }
}

fn key(layer: u8, seq: u16, timestamp: u32) -> PacketMeta {
    PacketMeta { keyframe: true, ..delta(layer, seq, timestamp) }
}

fn padding(layer: u8, seq: u16, timestamp: u32) -> PacketMeta {
    PacketMeta { padding_only: true, ..delta(layer, seq, timestamp) }
}

fn restarted(pkt: PacketMeta) -> PacketMeta {
    PacketMeta { ssrc: pkt.ssrc + 50_000, ..pkt }
}

fn settings(layer: LayerPreference, paused: bool) -> SubscriptionSettings {
    SubscriptionSettings { track_id: "TR_1".into(), layer, max_width: None, max_height: None, paused }
}

/// What a packet should come out as.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Forwarded with this output sequence number (and no layer switch).
    Fwd(u16),
    /// Forwarded with this output sequence number, switching to this layer.
    Switch(u16, u8),
    Drop(DropReason),
}

/// One thing that happens to the forwarder, with what it should answer.
#[derive(Clone, Debug)]
enum Step {
    /// Moves the clock to this many milliseconds after the start.
    At(u64),
    Prefer(LayerPreference),
    Pause(bool),
    Mute(bool),
    AmongLoudest(bool),
    Layers(&'static [Option<(u16, u16)>]),
    BandwidthCap(Option<u8>),
    Allocate(AllocationDecision),
    Connected,
    Packet(PacketMeta, Expect),
    PollKeyframe(Option<u8>),
    Layer {
        current: Option<u8>,
        target: Option<u8>,
    },
}
use Step::{At, Connected, Packet, PollKeyframe};

fn fwd(pkt: PacketMeta, seq: u16) -> Step {
    Packet(pkt, Expect::Fwd(seq))
}

fn switch(pkt: PacketMeta, seq: u16) -> Step {
    Packet(pkt, Expect::Switch(seq, pkt.layer))
}

fn dropped(pkt: PacketMeta, reason: DropReason) -> Step {
    Packet(pkt, Expect::Drop(reason))
}

/// Runs `steps` on a forwarder, checking every answer, and that output timestamps never go
/// back and move forward on every switch.
fn run(name: &str, mut forwarder: Forwarder, steps: &[Step]) {
    let start = Instant::now();
    let mut now = start;
    let mut last_ts: Option<u32> = None;
    for (i, step) in steps.iter().enumerate() {
        let context = format!("{name}: step {i} {step:?}");
        match step {
            At(ms) => now = start + Duration::from_millis(*ms),
            Step::Prefer(layer) => forwarder.set_preference(&settings(*layer, false)),
            Step::Pause(paused) => forwarder.set_preference(&settings(High, *paused)),
            Step::Mute(muted) => forwarder.set_muted(*muted),
            Step::AmongLoudest(among) => forwarder.set_among_loudest(*among),
            Step::Layers(layers) => forwarder.set_layers(layers),
            Step::BandwidthCap(cap) => forwarder.set_max_layer_by_bandwidth(*cap),
            Step::Allocate(decision) => forwarder.set_bandwidth_allocation(*decision),
            Connected => forwarder.on_connected(now),
            PollKeyframe(expected) => {
                assert_eq!(forwarder.poll_keyframe_request(now), *expected, "{context}")
            }
            Step::Layer { current, target } => {
                assert_eq!(forwarder.current_layer(), *current, "{context}");
                assert_eq!(forwarder.target_layer(), *target, "{context}");
            }
            Packet(pkt, expect) => {
                let decision = forwarder.on_packet(pkt, now);
                let (seq, switched) = match *expect {
                    Expect::Drop(reason) => {
                        assert_eq!(decision, Decision::Drop(reason), "{context}");
                        continue;
                    }
                    Expect::Fwd(seq) => (seq, None),
                    Expect::Switch(seq, layer) => (seq, Some(layer)),
                };
                let Decision::Forward(translation) = decision else {
                    panic!("{context}: expected a forward, got {decision:?}");
                };
                assert_eq!((translation.seq, translation.switched_layer), (seq, switched), "{context}");
                assert_eq!(translation.marker, pkt.marker, "{context}");
                if let Some(last) = last_ts {
                    let step = translation.timestamp.wrapping_sub(last) as i32;
                    let least = if switched.is_some() { 1 } else { 0 };
                    assert!(step >= least, "{context}: timestamp moved by {step}");
                }
                last_ts = Some(translation.timestamp);
            }
        }
    }
}

fn video() -> Forwarder {
    let mut forwarder = Forwarder::new(TrackKind::Video, VideoCodec::Vp8, 90_000);
    forwarder.set_layers(SIMULCAST3);
    forwarder
}

fn audio() -> Forwarder {
    Forwarder::new(TrackKind::Audio, VideoCodec::Other, 48_000)
}

#[test]
fn video_scenarios() {
    let max = u32::MAX;
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "start waits for a keyframe of the target layer",
            vec![
                Step::Layer { current: None, target: Some(2) },
                dropped(delta(0, 1, 0), NotTargetLayer),
                dropped(delta(2, 1, 0), AwaitingKeyframe),
                switch(key(2, 2, 3000), 2),
                fwd(delta(2, 3, 3000), 3),
                dropped(key(0, 3, 3000), NotTargetLayer),
                dropped(delta(1, 3, 3000), NotTargetLayer),
                Step::Layer { current: Some(2), target: Some(2) },
            ],
        ),
        (
            "start takes a lower layer's keyframe first, then moves up at the target's",
            vec![
                dropped(delta(0, 1, 0), NotTargetLayer),
                switch(key(0, 2, 3000), 2),
                fwd(delta(0, 3, 3000), 3),
                dropped(delta(2, 2, 3000), AwaitingKeyframe),
                Step::Layer { current: Some(0), target: Some(2) },
                switch(key(2, 3, 6000), 4),
                dropped(delta(0, 4, 6000), NotTargetLayer),
                Step::Layer { current: Some(2), target: Some(2) },
            ],
        ),
        (
            "switch down only at a keyframe, current layer continues",
            vec![
                switch(key(2, 10, 0), 10),
                Step::Prefer(Low),
                Step::Layer { current: Some(2), target: Some(0) },
                fwd(delta(2, 11, 0), 11),
                dropped(delta(0, 500, 0), AwaitingKeyframe),
                At(20),
                fwd(delta(2, 12, 3000), 12),
                switch(key(0, 501, 90_000), 13),
                dropped(delta(2, 13, 6000), NotTargetLayer),
                fwd(delta(0, 502, 90_000), 14),
            ],
        ),
        (
            "switch up only at a keyframe",
            vec![
                Step::Prefer(Low),
                switch(key(0, 100, 0), 100),
                Step::Prefer(High),
                fwd(delta(0, 101, 0), 101),
                dropped(delta(2, 7, 0), AwaitingKeyframe),
                dropped(delta(1, 9, 0), NotTargetLayer),
                At(40),
                switch(key(2, 8, 5), 102),
                dropped(delta(0, 102, 3000), NotTargetLayer),
                Step::Layer { current: Some(2), target: Some(2) },
            ],
        ),
        (
            "keyframe request waits for the connection",
            vec![PollKeyframe(None), At(100), PollKeyframe(None), Connected, PollKeyframe(Some(2)), PollKeyframe(None)],
        ),
        (
            "keyframe request repeats no sooner than 500 ms; a slow start asks for the lowest layer too",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                At(299),
                PollKeyframe(None),
                At(300),
                PollKeyframe(Some(0)),
                At(499),
                PollKeyframe(None),
                At(500),
                PollKeyframe(Some(2)),
                At(700),
                switch(key(2, 1, 0), 1),
                At(2000),
                PollKeyframe(None),
            ],
        ),
        (
            "once forwarding, only the target's keyframe is asked for",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                switch(key(0, 1, 0), 1),
                At(400),
                PollKeyframe(None),
                At(500),
                PollKeyframe(Some(2)),
                At(1000),
                PollKeyframe(Some(2)),
            ],
        ),
        (
            "a new target is requested at once",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                switch(key(2, 1, 0), 1),
                At(100),
                Step::Prefer(Low),
                PollKeyframe(Some(0)),
                PollKeyframe(None),
            ],
        ),
        (
            "paused drops everything and requests nothing",
            vec![
                Connected,
                switch(key(2, 1, 0), 1),
                Step::Pause(true),
                Step::Layer { current: None, target: None },
                dropped(key(2, 2, 3000), Paused),
                dropped(delta(0, 2, 3000), Paused),
                PollKeyframe(None),
                At(1000),
                Step::Pause(false),
                dropped(delta(2, 3, 90_000), AwaitingKeyframe),
                PollKeyframe(Some(2)),
                switch(key(2, 4, 90_000), 2),
            ],
        ),
        (
            "muted track drops like paused",
            vec![
                switch(key(2, 1, 0), 1),
                Step::Mute(true),
                dropped(delta(2, 2, 0), Paused),
                Step::Mute(false),
                dropped(delta(2, 3, 0), AwaitingKeyframe),
                At(10),
                switch(key(2, 4, 0), 2),
            ],
        ),
        (
            "padding of the current layer leaves no gap",
            vec![
                switch(key(2, 10, 0), 10),
                dropped(padding(2, 11, 0), Padding),
                dropped(padding(2, 12, 0), Padding),
                fwd(delta(2, 13, 0), 11),
                dropped(padding(0, 14, 0), Padding),
                fwd(delta(2, 14, 0), 12),
            ],
        ),
        (
            "padding of the target layer does not start it",
            vec![dropped(padding(2, 1, 0), Padding), switch(key(2, 2, 0), 2)],
        ),
        (
            "upstream loss leaves a gap, reordering keeps slots",
            vec![
                switch(key(2, 10, 0), 10),
                fwd(delta(2, 13, 0), 13),
                fwd(delta(2, 11, 0), 11),
                dropped(delta(2, 11, 0), Duplicate),
                dropped(padding(2, 14, 0), Padding),
                fwd(delta(2, 12, 0), 12),
                fwd(delta(2, 15, 0), 14),
            ],
        ),
        (
            "publisher restart on the current layer",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                switch(key(2, 10, 0), 10),
                At(600),
                dropped(restarted(delta(2, 7000, 1)), AwaitingKeyframe),
                PollKeyframe(Some(2)),
                fwd(delta(2, 11, 3000), 11),
                At(650),
                switch(restarted(key(2, 7001, 1)), 12),
                dropped(delta(2, 12, 6000), OutOfOrderTooOld),
                fwd(restarted(delta(2, 7002, 3001)), 13),
                PollKeyframe(None),
            ],
        ),
        (
            "wraps of input seq at 65535 and ts at 2^32",
            vec![
                switch(key(2, 65534, max - 1000), 65534),
                fwd(delta(2, 65535, max - 1000), 65535),
                fwd(delta(2, 0, max.wrapping_add(2000)), 0),
                Step::Prefer(Low),
                At(10),
                switch(key(0, 40000, 123), 1),
                fwd(delta(0, 40001, 3123), 2),
            ],
        ),
        (
            "a layer that stops is replaced by the next one below",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                switch(key(2, 1, 0), 1),
                dropped(delta(1, 1, 0), NotTargetLayer),
                At(1000),
                dropped(delta(1, 2, 0), NotTargetLayer),
                At(1600),
                dropped(delta(1, 3, 0), AwaitingKeyframe),
                Step::Layer { current: Some(2), target: Some(1) },
                PollKeyframe(Some(1)),
                switch(key(1, 4, 0), 2),
                At(1700),
                dropped(delta(2, 2, 9000), AwaitingKeyframe),
                PollKeyframe(Some(2)),
            ],
        ),
        (
            "bandwidth cap lowers the target",
            vec![
                switch(key(2, 1, 0), 1),
                Step::BandwidthCap(Some(0)),
                Step::Layer { current: Some(2), target: Some(0) },
                fwd(delta(2, 2, 0), 2),
                switch(key(0, 9, 0), 3),
                Step::BandwidthCap(None),
                Step::Layer { current: Some(0), target: Some(2) },
            ],
        ),
        (
            "paused for bandwidth drops everything, resumes with a keyframe request",
            vec![
                Connected,
                PollKeyframe(Some(2)),
                switch(key(2, 1, 0), 1),
                Step::Allocate(AllocationDecision::Paused(PauseReason::Bandwidth)),
                Step::Layer { current: None, target: None },
                dropped(key(2, 2, 3000), PausedForBandwidth),
                dropped(key(0, 2, 3000), PausedForBandwidth),
                PollKeyframe(None),
                At(600),
                Step::Allocate(AllocationDecision::Layer(0)),
                Step::Layer { current: None, target: Some(0) },
                PollKeyframe(Some(0)),
                dropped(delta(0, 3, 180_000), AwaitingKeyframe),
                switch(key(0, 4, 180_000), 2),
                dropped(delta(2, 3, 180_000), NotTargetLayer),
            ],
        ),
        (
            "subscriber pause wins over a bandwidth pause",
            vec![
                switch(key(2, 1, 0), 1),
                Step::Allocate(AllocationDecision::Paused(PauseReason::Bandwidth)),
                Step::Pause(true),
                dropped(delta(2, 2, 0), Paused),
                Step::Allocate(AllocationDecision::Paused(PauseReason::Subscriber)),
                dropped(delta(2, 3, 0), Paused),
                Step::Pause(false),
                At(10),
                switch(key(2, 4, 0), 2),
            ],
        ),
        (
            "an allocated layer caps the target",
            vec![
                switch(key(2, 1, 0), 1),
                Step::Allocate(AllocationDecision::Layer(1)),
                Step::Layer { current: Some(2), target: Some(1) },
                fwd(delta(2, 2, 0), 2),
                switch(key(1, 9, 0), 3),
            ],
        ),
        (
            "layer beyond the supported count is never forwarded",
            vec![
                dropped(key(200, 1, 0), NotTargetLayer),
                switch(key(2, 1, 0), 1),
                dropped(key(200, 2, 0), NotTargetLayer),
            ],
        ),
        (
            "set_layers keeps layers seen in packets",
            vec![
                switch(key(2, 1, 0), 1),
                Step::Layers(&[Some((320, 180))]),
                Step::Layer { current: Some(2), target: Some(2) },
            ],
        ),
    ];
    for (name, steps) in cases {
        run(name, video(), &steps);
    }
}

#[test]
fn single_layer_video_needs_no_layer_list() {
    let forwarder = Forwarder::new(TrackKind::Video, VideoCodec::H264, 90_000);
    run(
        "no set_layers",
        forwarder,
        &[
            Connected,
            PollKeyframe(None),
            dropped(delta(0, 1, 0), AwaitingKeyframe),
            PollKeyframe(Some(0)),
            switch(key(0, 2, 0), 2),
        ],
    );
}

#[test]
fn video_without_any_layer_has_nothing_to_forward() {
    let mut forwarder = Forwarder::new(TrackKind::Video, VideoCodec::Vp8, 90_000);
    forwarder.set_layers(SIMULCAST3);
    let start = Instant::now();
    // Every layer stopped long ago, then a stray packet of a layer past the supported count.
    for layer in 0..3 {
        forwarder.on_packet(&delta(layer, 1, 0), start);
    }
    let later = start + Duration::from_secs(10);
    assert_eq!(forwarder.on_packet(&delta(9, 1, 0), later), Decision::Drop(NoLayerAvailable));
    assert_eq!(forwarder.poll_keyframe_request(later), None);
}

#[test]
fn audio_scenarios() {
    let audio_restart = |pkt: PacketMeta| PacketMeta { ssrc: 77, ..pkt };
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "forwards everything from the first packet",
            vec![
                switch(delta(0, 500, 960), 500),
                fwd(delta(0, 501, 1920), 501),
                fwd(padding(0, 502, 2880), 502),
                Connected,
                PollKeyframe(None),
            ],
        ),
        (
            "pause drops, resume continues the numbering",
            vec![
                switch(delta(0, 500, 960), 500),
                Step::Pause(true),
                dropped(delta(0, 501, 1920), Paused),
                At(100),
                Step::Pause(false),
                switch(delta(0, 502, 2880), 501),
            ],
        ),
        ("mute drops", vec![Step::Mute(true), dropped(delta(0, 1, 0), Paused)]),
        (
            "held back from the loudest drops, let through continues the numbering",
            vec![
                switch(delta(0, 500, 960), 500),
                Step::AmongLoudest(false),
                dropped(delta(0, 501, 1920), NotLoudest),
                dropped(delta(0, 502, 2880), NotLoudest),
                At(100),
                Step::AmongLoudest(true),
                switch(delta(0, 503, 3840), 501),
                fwd(delta(0, 504, 4800), 502),
            ],
        ),
        (
            "a bandwidth pause drops, the audio decision resumes",
            vec![
                switch(delta(0, 500, 960), 500),
                Step::Allocate(AllocationDecision::Paused(PauseReason::Bandwidth)),
                dropped(delta(0, 501, 1920), PausedForBandwidth),
                At(100),
                Step::Allocate(AllocationDecision::Audio),
                switch(delta(0, 502, 2880), 501),
            ],
        ),
        (
            "publisher restart continues the numbering",
            vec![
                switch(delta(0, 500, 960), 500),
                At(20),
                switch(audio_restart(delta(0, 9, 5)), 501),
                dropped(delta(0, 501, 1920), OutOfOrderTooOld),
                fwd(audio_restart(delta(0, 10, 965)), 502),
            ],
        ),
    ];
    for (name, steps) in cases {
        run(name, audio(), &steps);
    }
}

#[test]
fn poll_timeout_reports_the_next_keyframe_request() {
    let start = Instant::now();
    let mut forwarder = video();
    assert_eq!(forwarder.poll_timeout(), None, "not connected");
    forwarder.on_connected(start);
    assert_eq!(forwarder.poll_timeout(), Some(start), "due at once");
    assert_eq!(forwarder.poll_keyframe_request(start), Some(2));
    assert_eq!(forwarder.poll_timeout(), Some(start + Duration::from_millis(500)));
    forwarder.on_packet(&key(2, 1, 0), start);
    assert_eq!(forwarder.poll_timeout(), None, "nothing wanted");
}

#[test]
fn marker_passes_through() {
    let mut forwarder = video();
    let pkt = PacketMeta { marker: true, ..key(2, 1, 0) };
    let Decision::Forward(translation) = forwarder.on_packet(&pkt, Instant::now()) else {
        panic!("keyframe of the target must be forwarded");
    };
    assert!(translation.marker);
}

/// Random sequences of settings changes and packets (in-order streams with loss, reordering,
/// duplicates, padding, restarts and junk layers): no panic, no output sequence number used
/// twice, and a switch is only ever reported for the layer now current.
#[test]
fn random_operations_keep_invariants() {
    for seed in 0..20 {
        let mut rng = Lcg::new(seed);
        let mut forwarder = video();
        let start = Instant::now();
        let mut now_ms = 0u64;
        // Next sequence number and timestamp per layer; the SSRC generation changes on restarts.
        let mut next_seq = [0u16; 4].map(|_| rng.next() as u16);
        let mut next_ts = [0u32; 4].map(|_| rng.next());
        let mut generation = [0u32; 4];
        let mut sent = std::collections::HashSet::new();
        let mut forwarded = 0;
        for _ in 0..3000 {
            let now = start + Duration::from_millis(now_ms);
            match rng.below(100) {
                0 => forwarder.set_preference(&settings(
                    [Low, High, LayerPreference::Medium][rng.below(3) as usize],
                    rng.chance(10),
                )),
                1 => forwarder.set_muted(rng.chance(10)),
                2 => forwarder.set_max_layer_by_bandwidth([None, Some(0), Some(1)][rng.below(3) as usize]),
                3 if rng.chance(50) => forwarder.set_bandwidth_allocation(
                    [
                        AllocationDecision::Layer(0),
                        AllocationDecision::Layer(1),
                        AllocationDecision::Layer(2),
                        AllocationDecision::Paused(PauseReason::Bandwidth),
                        AllocationDecision::Paused(PauseReason::Subscriber),
                    ][rng.below(5) as usize],
                ),
                3 => forwarder.on_connected(now),
                4 => {
                    forwarder.poll_keyframe_request(now);
                }
                5 => generation[rng.below(3) as usize] += 1,
                _ => {
                    let layer = if rng.chance(2) { 9 } else { rng.below(3) as u8 };
                    let index = usize::from(layer.min(3));
                    let seq = match rng.below(20) {
                        0 => next_seq[index].wrapping_sub(rng.below(4) as u16), // late or duplicate
                        1 => next_seq[index].wrapping_add(rng.below(3) as u16), // loss
                        _ => next_seq[index],
                    };
                    if seq.wrapping_sub(next_seq[index]) as i16 >= 0 {
                        next_seq[index] = seq.wrapping_add(1);
                    }
                    if rng.chance(30) {
                        next_ts[index] = next_ts[index].wrapping_add(3000);
                        now_ms += 11;
                    }
                    let pkt = PacketMeta {
                        layer,
                        ssrc: ssrc_of(layer) + generation[index] * 10_000,
                        seq,
                        timestamp: next_ts[index],
                        marker: rng.chance(10),
                        keyframe: rng.chance(5),
                        padding_only: rng.chance(5),
                        vp8: None,
                    };
                    let decision = forwarder.on_packet(&pkt, now);
                    if let Decision::Forward(translation) = decision {
                        forwarded += 1;
                        assert!(sent.insert(translation.seq), "seed {seed}: output seq {} reused", translation.seq);
                        if let Some(layer) = translation.switched_layer {
                            assert_eq!(forwarder.current_layer(), Some(layer), "seed {seed}");
                        }
                    }
                }
            }
        }
        assert!(forwarded > 100, "seed {seed}: only {forwarded} forwarded");
    }
}

#[test]
fn padding_on_a_dropped_top_layer_does_not_hold_the_target() {
    // The publisher's encoder stopped layer 2 but keeps sending probe padding on its SSRC: the
    // subscriber must fall back to layer 1 instead of waiting for a layer-2 keyframe forever.
    let mut forwarder = video();
    let start = Instant::now();
    forwarder.on_connected(start);
    let mut seq = [100u16, 200, 300];
    let mut forwarded = 0;
    for tick in 0..40u32 {
        let now = start + std::time::Duration::from_millis(u64::from(tick) * 100);
        let ts = tick * 3000;
        for layer in 0..3u8 {
            let i = usize::from(layer);
            seq[i] = seq[i].wrapping_add(1);
            let pkt = match layer {
                2 => padding(2, seq[i], ts),
                _ if tick % 10 == 0 => key(layer, seq[i], ts),
                _ => delta(layer, seq[i], ts),
            };
            if matches!(forwarder.on_packet(&pkt, now), Decision::Forward(_)) {
                forwarded += 1;
            }
        }
    }
    assert_eq!(forwarder.target_layer(), Some(1));
    assert_eq!(forwarder.current_layer(), Some(1));
    assert!(forwarded > 10, "layer 1 flows once layer 2 is seen to be padding only ({forwarded})");
}

#[test]
fn requested_layer_ignores_activity_and_bandwidth() {
    let t0 = Instant::now();
    let mut f = video();
    f.set_layers(&[Some((320, 180)), Some((640, 360)), Some((1280, 720))]);
    f.set_preference(&settings(High, false));
    // Only layer 0 flows and bandwidth allows only layer 0: the subscriber still asks for 2.
    f.seed_active_layers(&[0], t0);
    f.set_max_layer_by_bandwidth(Some(0));
    assert_eq!(f.preferred_layer(), Some(0));
    assert_eq!(f.requested_layer(), Some(2));
    f.set_preference(&SubscriptionSettings {
        max_width: Some(700),
        max_height: Some(400),
        ..settings(LayerPreference::Auto, false)
    });
    assert_eq!(f.requested_layer(), Some(1), "a 700x400 tile needs the 640x360 layer");
    f.set_preference(&settings(Low, false));
    assert_eq!(f.requested_layer(), Some(0));
    f.set_preference(&settings(High, true));
    assert_eq!(f.requested_layer(), None, "paused by the subscriber");
    assert_eq!(audio().requested_layer(), Some(0));
}

#[test]
fn available_layers_count_as_active_without_their_packets() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut f = video();
    f.set_preference(&settings(High, false));
    f.on_connected(t0);
    // Only layer 0 arrives (a relayed track: nobody here used the others yet).
    for n in 0..20u16 {
        f.on_packet(&key(0, n, u32::from(n) * 3000), ms(u64::from(n) * 100));
    }
    assert_eq!(f.target_layer(), Some(0), "after the grace, the silent layers count as stopped");
    f.set_available_layers(Some([0u8, 1, 2].into_iter().collect()), ms(2000));
    assert_eq!(f.target_layer(), Some(2), "the publisher's node says all three are sent");
    assert_eq!(f.poll_keyframe_request(ms(2000)), Some(2), "so it asks for the top one");
    f.set_available_layers(Some([0u8, 1].into_iter().collect()), ms(2100));
    assert_eq!(f.target_layer(), Some(1), "the top layer stopped at the publisher");
    // A packet of a layer not in the set still makes it active.
    f.on_packet(&key(2, 1, 60_000), ms(2200));
    assert_eq!(f.target_layer(), Some(2));
    assert_eq!(f.current_layer(), Some(2), "and its keyframe switches to it");
    f.set_available_layers(None, ms(2300));
    assert_eq!(f.target_layer(), Some(2), "by its packets alone, layer 2 flows and layer 1 does not");
}

/// A packet of `layer` carrying VP8 picture numbering: each layer numbers from its own start.
fn vp8_packet(layer: u8, n: u16, keyframe: bool) -> PacketMeta {
    let start = [20_000u16, 7, 32_700][usize::from(layer)];
    PacketMeta {
        keyframe,
        vp8: Some(crate::vp8::Vp8Descriptor {
            picture_id: Some(crate::vp8::PictureId { value: start.wrapping_add(n) & 0x7fff, long: true }),
            tl0_pic_idx: Some((u16::from(layer) * 100 + n) as u8),
            key_idx: None,
        }),
        ..delta(layer, 1000 * u16::from(layer) + n, u32::from(n) * 3000)
    }
}

#[test]
fn vp8_picture_numbering_continues_across_switches_and_pauses() {
    let start = Instant::now();
    let mut forwarder = video();
    let mut pictures = Vec::new();
    let mut send = |forwarder: &mut Forwarder, pkt: PacketMeta, ms: u64| {
        if let Decision::Forward(t) = forwarder.on_packet(&pkt, start + Duration::from_millis(ms)) {
            let rewrite = t.vp8.expect("a VP8 packet gets its numbering");
            pictures.push((rewrite.picture_id.unwrap(), rewrite.tl0_pic_idx.unwrap()));
        }
    };
    for n in 0..3 {
        send(&mut forwarder, vp8_packet(2, n, n == 0), u64::from(n) * 33);
    }
    forwarder.set_preference(&settings(Low, false));
    send(&mut forwarder, vp8_packet(0, 5, true), 100);
    send(&mut forwarder, vp8_packet(0, 6, false), 133);
    forwarder.set_paused_for_bandwidth(true);
    send(&mut forwarder, vp8_packet(0, 7, false), 166);
    forwarder.set_paused_for_bandwidth(false);
    send(&mut forwarder, vp8_packet(0, 8, false), 200);
    send(&mut forwarder, vp8_packet(0, 9, true), 233);
    // The top layer's own numbers (32 700 on) first, then one sequence: every switch and the
    // resume after the pause continue right after the last picture sent.
    let first = 32_700u16;
    let expected: Vec<(u16, u8)> = (0..6u16).map(|i| ((first + i) & 0x7fff, (200 + i) as u8)).collect();
    assert_eq!(pictures, expected);
}

#[test]
fn shedding_caps_below_the_top_layer_and_lifts() {
    let mut forwarder = video();
    assert_eq!(forwarder.target_layer(), Some(2));
    forwarder.set_shed_levels(1);
    assert_eq!(forwarder.target_layer(), Some(1));
    forwarder.set_shed_levels(5);
    assert_eq!(forwarder.target_layer(), Some(0), "never below the lowest layer");
    // The tighter of the bandwidth cap and the shed cap wins.
    forwarder.set_shed_levels(1);
    forwarder.set_max_layer_by_bandwidth(Some(0));
    assert_eq!(forwarder.target_layer(), Some(0));
    forwarder.set_max_layer_by_bandwidth(Some(2));
    assert_eq!(forwarder.target_layer(), Some(1));
    forwarder.set_shed_levels(0);
    assert_eq!(forwarder.target_layer(), Some(2));
    // Audio has no layers to shed.
    let mut audio = audio();
    audio.set_shed_levels(2);
    assert_eq!(audio.target_layer(), Some(0));
}
