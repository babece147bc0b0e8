use super::*;

const SSRCS: [u32; 3] = [100, 101, 102];

fn link() -> RelayOut {
    RelayOut::new(LinkId(1), "10.0.0.2:7000".parse().unwrap(), &SSRCS, true)
}

fn meta(layer: u8, seq: u16, keyframe: bool) -> PacketMeta {
    PacketMeta {
        layer,
        ssrc: 7,
        seq,
        timestamp: u32::from(seq) * 3000,
        marker: false,
        keyframe,
        padding_only: false,
        vp8: None,
    }
}

fn padding(layer: u8, seq: u16) -> PacketMeta {
    PacketMeta { padding_only: true, ..meta(layer, seq, false) }
}

fn payload(seq: u16) -> Bytes {
    Bytes::from(seq.to_be_bytes().to_vec())
}

/// Feeds `(meta)` packets at `now`; returns each one's link sequence number or drop reason.
fn feed(out: &mut RelayOut, packets: &[PacketMeta], now: Instant) -> Vec<Result<(u32, u16), RelayDrop>> {
    packets
        .iter()
        .map(|m| out.on_packet(m, &payload(m.seq), now).map(|p| (p.header.ssrc, p.header.sequence_number)))
        .collect()
}

#[test]
fn a_joining_layer_crosses_from_its_keyframe_with_the_publishers_numbering() {
    let now = Instant::now();
    let mut out = link();
    let got = feed(&mut out, &[meta(0, 10, false), meta(0, 11, true), meta(0, 12, false), meta(1, 50, false)], now);
    assert_eq!(
        got,
        vec![Err(RelayDrop::AwaitingKeyframe), Ok((100, 11)), Ok((100, 12)), Err(RelayDrop::AwaitingKeyframe)]
    );
    assert_eq!(feed(&mut out, &[meta(5, 1, true)], now), vec![Err(RelayDrop::NotOnLink)], "no SSRC for layer 5");
}

#[test]
fn padding_leaves_no_gap_and_duplicates_do_not_cross_twice() {
    let now = Instant::now();
    let mut out = RelayOut::new(LinkId(1), "10.0.0.2:7000".parse().unwrap(), &SSRCS, false);
    let got = feed(&mut out, &[meta(0, 1, false), padding(0, 2), meta(0, 3, false), meta(0, 3, false)], now);
    assert_eq!(got, vec![Ok((100, 1)), Err(RelayDrop::Padding), Ok((100, 2)), Err(RelayDrop::Duplicate)]);
    // A packet the publisher lost (4) keeps its slot: the peer sees the gap and asks for it.
    assert_eq!(feed(&mut out, &[meta(0, 5, false)], now), vec![Ok((100, 4))]);
}

#[test]
fn a_layer_that_leaves_crosses_two_more_seconds_and_rejoins_where_it_stopped() {
    let t0 = Instant::now();
    let mut out = link();
    assert_eq!(feed(&mut out, &[meta(2, 100, true), meta(2, 101, false)], t0), vec![Ok((102, 100)), Ok((102, 101))]);
    assert_eq!(out.set_used(LayerSet::EMPTY.with(0), t0), LayerSet::EMPTY, "layer 0 was joining already");
    let soon = t0 + LAYER_LEAVE_DELAY - Duration::from_millis(1);
    assert_eq!(feed(&mut out, &[meta(2, 102, false)], soon), vec![Ok((102, 102))], "still crossing");
    let later = t0 + LAYER_LEAVE_DELAY;
    assert_eq!(feed(&mut out, &[meta(2, 103, false)], later), vec![Err(RelayDrop::NotOnLink)]);
    assert!(!out.crossing().contains(2));
    // Back: it waits for a keyframe (asked for at once), then continues right after 102.
    assert_eq!(out.set_used(LayerSet::EMPTY.with(0).with(2), later), LayerSet::EMPTY.with(2));
    let got = feed(&mut out, &[meta(2, 400, false), meta(2, 401, true), meta(2, 402, false)], later);
    assert_eq!(got, vec![Err(RelayDrop::AwaitingKeyframe), Ok((102, 103)), Ok((102, 104))]);
}

#[test]
fn a_layer_wanted_again_before_it_stopped_needs_no_keyframe() {
    let t0 = Instant::now();
    let mut out = link();
    feed(&mut out, &[meta(1, 1, true)], t0);
    out.set_used(LayerSet::EMPTY, t0);
    assert_eq!(out.set_used(LayerSet::EMPTY.with(1), t0 + Duration::from_secs(1)), LayerSet::EMPTY);
    let got = feed(&mut out, &[meta(1, 2, false)], t0 + Duration::from_secs(5));
    assert_eq!(got, vec![Ok((101, 2))], "it never stopped");
}

#[test]
fn joining_layers_are_asked_for_again_each_interval() {
    let t0 = Instant::now();
    let mut out = link();
    let all = LayerSet::first(3);
    assert_eq!(out.poll_keyframe_requests(t0), all);
    assert_eq!(out.poll_keyframe_requests(t0), LayerSet::EMPTY, "paced");
    let later = t0 + sfu_core::KEYFRAME_REQUEST_INTERVAL;
    feed(&mut out, &[meta(1, 1, true)], later);
    assert_eq!(out.poll_keyframe_requests(later), LayerSet::EMPTY.with(0).with(2));
    for layer in [0, 2] {
        feed(&mut out, &[meta(layer, 1, true)], later);
    }
    assert_eq!(out.poll_keyframe_requests(later + Duration::from_secs(1)), LayerSet::EMPTY, "every layer crosses");
}

#[test]
fn a_nack_gets_the_same_packet_a_few_times_at_most() {
    let t0 = Instant::now();
    let mut out = link();
    let first = out.on_packet(&meta(0, 9, true), &payload(9), t0).unwrap();
    let mut resent = 0;
    for i in 0..10u64 {
        if let Some(again) = out.resend(100, 9, t0 + Duration::from_millis(100 * i)) {
            assert_eq!(again, first, "the very packet");
            resent += 1;
        }
    }
    assert_eq!(resent, usize::from(sfu_core::history::MAX_RESENDS));
    assert!(out.resend(100, 10, t0).is_none(), "never sent");
    assert!(out.resend(555, 9, t0).is_none(), "not this link's SSRC");
}

#[test]
fn audio_comes_back_at_its_next_packet_with_no_keyframe_to_wait_for() {
    let t0 = Instant::now();
    let mut out = RelayOut::new(LinkId(1), "10.0.0.2:7000".parse().unwrap(), &SSRCS[..1], false);
    assert_eq!(feed(&mut out, &[meta(0, 1, false)], t0), vec![Ok((100, 1))]);
    out.set_used(LayerSet::EMPTY, t0);
    let later = t0 + LAYER_LEAVE_DELAY;
    assert_eq!(feed(&mut out, &[meta(0, 2, false)], later), vec![Err(RelayDrop::NotOnLink)]);
    assert_eq!(out.set_used(LayerSet::EMPTY.with(0), later), LayerSet::EMPTY, "no keyframe to ask for");
    assert_eq!(feed(&mut out, &[meta(0, 3, false)], later), vec![Ok((100, 2))]);
}
