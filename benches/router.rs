//! The router's per-packet, per-subscriber decision: `Forwarder::on_packet` (layer logic and
//! sequence/timestamp munging) on a 3-layer simulcast stream, as the shard runs it for every
//! subscriber of a track.
//!
//! `cargo bench --bench router` (numbers in docs/performance.md).

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use sfu_core::{Decision, Forwarder, PacketMeta, PictureId, VideoCodec, Vp8Descriptor};
use sfu_proto::{LayerPreference, SubscriptionSettings, TrackKind};
use std::time::{Duration, Instant};

/// Packets per layer per frame, roughly as browsers send 180p / 360p / 720p.
const PACKETS_PER_FRAME: [u16; 3] = [1, 2, 5];
const FRAMES: u32 = 300;

/// Ten seconds of a 30 fps simulcast stream, layers interleaved frame by frame; every layer
/// starts with a keyframe and has one every 3 s.
fn stream() -> Vec<PacketMeta> {
    let mut seq = [1000u16, 2000, 3000];
    let mut packets = Vec::new();
    for frame in 0..FRAMES {
        let timestamp = 90_000 + frame * 3000;
        for layer in 0..3u8 {
            let count = PACKETS_PER_FRAME[usize::from(layer)];
            for i in 0..count {
                let s = &mut seq[usize::from(layer)];
                packets.push(PacketMeta {
                    layer,
                    ssrc: 0x1000 + u32::from(layer),
                    seq: *s,
                    timestamp,
                    marker: i + 1 == count,
                    keyframe: i == 0 && frame % 90 == 0,
                    padding_only: false,
                    // Each layer numbers its pictures from its own start, as browsers do.
                    vp8: Some(Vp8Descriptor {
                        picture_id: Some(PictureId {
                            value: (u16::from(layer) * 10_000 + frame as u16) & 0x7fff,
                            long: true,
                        }),
                        tl0_pic_idx: Some(frame as u8),
                        key_idx: None,
                    }),
                });
                *s = s.wrapping_add(1);
            }
        }
    }
    packets
}

fn forwarder(layer: LayerPreference, now: Instant) -> Forwarder {
    let mut f = Forwarder::new(TrackKind::Video, VideoCodec::Vp8, 90_000);
    f.set_layers(&[Some((320, 180)), Some((640, 360)), Some((1280, 720))]);
    f.set_preference(&SubscriptionSettings {
        track_id: "TR_bench".into(),
        layer,
        max_width: None,
        max_height: None,
        paused: false,
    });
    f.seed_active_layers(&[0, 1, 2], now);
    f.on_connected(now);
    f
}

/// Runs `packets` through `f` (33 ms of clock per frame); returns how many were forwarded.
fn run(f: &mut Forwarder, packets: &[PacketMeta], start: Instant) -> usize {
    let mut forwarded = 0;
    for p in packets {
        let now = start + Duration::from_micros(u64::from(p.timestamp - 90_000) * 100 / 9);
        if let Decision::Forward(t) = f.on_packet(black_box(p), now) {
            black_box(t);
            forwarded += 1;
        }
    }
    forwarded
}

fn decision(c: &mut Criterion) {
    let packets = stream();
    let mut group = c.benchmark_group("forwarder");
    group.throughput(Throughput::Elements(packets.len() as u64));
    for (name, layer) in [("high", LayerPreference::High), ("low", LayerPreference::Low)] {
        // What is measured must be forwarding, not a forwarder that drops everything.
        let start = Instant::now();
        let forwarded = run(&mut forwarder(layer, start), &packets, start);
        let expected = packets.iter().filter(|p| p.layer == if name == "high" { 2 } else { 0 }).count();
        assert_eq!(forwarded, expected, "{name}: every packet of the chosen layer is forwarded");
        group.bench_function(format!("3-layer stream, subscriber on {name}"), |b| {
            b.iter_batched_ref(
                || {
                    let start = Instant::now();
                    (forwarder(layer, start), start)
                },
                |(f, start)| run(f, &packets, *start),
                criterion::BatchSize::SmallInput,
            );
        });
    }
    let audio: Vec<PacketMeta> = (0..500u16)
        .map(|i| PacketMeta {
            layer: 0,
            ssrc: 7,
            seq: i,
            timestamp: 90_000 + u32::from(i) * 960,
            marker: false,
            keyframe: false,
            padding_only: false,
            vp8: None,
        })
        .collect();
    group.throughput(Throughput::Elements(audio.len() as u64));
    group.bench_function("audio", |b| {
        b.iter_batched_ref(
            || {
                let start = Instant::now();
                let mut f = Forwarder::new(TrackKind::Audio, VideoCodec::from_mime("audio/opus"), 48_000);
                f.on_connected(start);
                (f, start)
            },
            |(f, start)| run(f, &audio, *start),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
