//! The router's decisions for one subscription under any sequence of packets and settings:
//! nothing is forwarded while the track is muted or paused, and no two different packets go out under one sequence number, as the subscriber places them.

use arbitrary::Unstructured;
use sfu_core::{
    Decision, Dynacast, Forwarder, PacketMeta, SeqUnwrapper, UplinkNacks, VideoCodec, parse_vp8_descriptor,
};
use sfu_proto::{LayerPreference, SubscriptionSettings, TrackId, TrackKind};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const LAYERS: usize = 3;
/// Output sequence numbers remembered for the uniqueness check.
const RECENT: usize = 4096;

/// The outputs as the subscriber places them: each sequence number extended by its distance
/// from the highest so far, as a receiver unwraps it.
#[derive(Default)]
struct Sent {
    unwrapper: SeqUnwrapper,
    by_seq: HashMap<u64, (u32, u16)>,
    order: VecDeque<u64>,
}

impl Sent {
    /// Output `seq` carries input packet (ssrc, seq).
    fn record(&mut self, seq: u16, input: (u32, u16)) {
        let seq = self.unwrapper.unwrap(seq);
        if let Some(earlier) = self.by_seq.get(&seq) {
            assert_eq!(*earlier, input, "output seq {seq} carried {earlier:?} and now {input:?}");
            return;
        }
        self.by_seq.insert(seq, input);
        self.order.push_back(seq);
        if self.order.len() > RECENT
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_seq.remove(&oldest);
        }
    }
}

fn settings(u: &mut Unstructured<'_>) -> arbitrary::Result<SubscriptionSettings> {
    Ok(SubscriptionSettings {
        track_id: TrackId("TR_fuzz".into()),
        layer: *u.choose(&[
            LayerPreference::Low,
            LayerPreference::Medium,
            LayerPreference::High,
            LayerPreference::Auto,
        ])?,
        max_width: u.arbitrary()?,
        max_height: u.arbitrary()?,
        paused: u.ratio(1, 8)?,
    })
}

pub fn router_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(video) = u.arbitrary::<bool>() else { return };
    let kind = if video { TrackKind::Video } else { TrackKind::Audio };
    let mut forwarder = Forwarder::new(kind, VideoCodec::Vp8, if video { 90_000 } else { 48_000 });
    forwarder.set_layers(&[Some((320, 180)), Some((640, 360)), Some((1280, 720))]);
    let mut dynacast = Dynacast::new(LAYERS, Instant::now());
    let mut uplink = UplinkNacks::new();
    let mut now = Instant::now();
    let (mut muted, mut paused) = (false, false);
    let mut sent = Sent::default();
    for _ in 0..2048 {
        let Ok(op) = u.int_in_range(0..=9u8) else { break };
        let step = match op {
            0..=4 => packet(&mut u, &mut forwarder, &mut uplink, now).map(|(input, decision)| {
                if let Decision::Forward(translation) = decision {
                    assert!(!muted, "forwarded while muted");
                    assert!(!paused, "forwarded while paused");
                    sent.record(translation.seq, input);
                }
            }),
            5 => settings(&mut u).map(|s| {
                paused = s.paused;
                forwarder.set_preference(&s);
                let _ = dynacast.set_wanted(forwarder.requested_layer(), now);
            }),
            6 => u.arbitrary().map(|m| {
                muted = m;
                forwarder.set_muted(m);
            }),
            7 => u.int_in_range(0..=3u8).map(|l| forwarder.set_max_layer_by_bandwidth((l < 3).then_some(l))),
            8 => u.int_in_range(0..=3u8).map(|l| forwarder.set_shed_levels(l)),
            _ => u.int_in_range(0..=3000u64).map(|ms| {
                now += Duration::from_millis(ms);
                if ms % 7 == 0 {
                    forwarder.on_connected(now);
                }
                let _ = forwarder.poll_keyframe_request(now);
                let _ = dynacast.handle_timeout(now);
                let _ = uplink.poll_nacks(now);
            }),
        };
        if step.is_err() {
            break;
        }
    }
}

/// One publisher packet of the fuzzer's choosing; returns its (ssrc, seq) and the decision.
fn packet(
    u: &mut Unstructured<'_>,
    forwarder: &mut Forwarder,
    uplink: &mut UplinkNacks,
    now: Instant,
) -> arbitrary::Result<((u32, u16), Decision)> {
    let layer: u8 = u.int_in_range(0..=LAYERS as u8 - 1)?;
    // A few SSRCs per layer: restarts, and a stream switching layers.
    let ssrc = 1000 + u32::from(layer) * 10 + u32::from(u.int_in_range(0..=1u8)?);
    let payload = u.arbitrary::<Vec<u8>>()?;
    let meta = PacketMeta {
        layer,
        ssrc,
        seq: u.arbitrary()?,
        timestamp: u.arbitrary()?,
        marker: u.arbitrary()?,
        keyframe: u.arbitrary()?,
        padding_only: payload.is_empty(),
        vp8: parse_vp8_descriptor(&payload),
    };
    let _ = uplink.on_packet(meta.seq, now);
    let decision = forwarder.on_packet(&meta, now);
    if let Decision::Forward(translation) = decision
        && let Some(rewrite) = translation.vp8
    {
        let mut rewritten = payload;
        rewrite.apply(&mut rewritten);
    }
    Ok(((ssrc, meta.seq), decision))
}
