//! A subscriber's NACK is answered from the history of what its shard sent it: as RTX when the
//! subscriber negotiated it, otherwise as the same packet on its own stream.

use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use std::time::{Duration, Instant};

use super::client::Received;
use super::codecs::PT_RTX;
use super::harness::{ClientId, LATENCY, Net, Options};
use super::session::Subscriber;

fn nack(net: &mut Net, client: ClientId, ssrc: u32, seq: u16) -> Instant {
    let packet =
        TransportLayerNack { sender_ssrc: 1, media_ssrc: ssrc, nacks: nack_pairs_from_sequence_numbers(&[seq]) };
    let now = net.now;
    net.client_mut(client).send_rtcp(ssrc, vec![Box::new(packet)], now);
    now
}

/// What both tests start from: a publisher on shard 0, a subscriber on shard 1 receiving
/// its top layer for a while.
fn watching(options: Options) -> (Net, Subscriber) {
    let mut net = Net::new(2, options);
    let publisher = net.publish(0, "alice");
    net.run_for(Duration::from_secs(1));
    let subscriber = net.subscribe(1, "bob", &publisher);
    net.run_for(Duration::from_secs(3));
    (net, subscriber)
}

fn received_after<'a>(net: &'a Net, client: ClientId, at: Instant, like: &Received) -> Vec<&'a Received> {
    net.client(client).received.iter().filter(|r| r.at > at && r.ssrc == like.ssrc && r.seq == like.seq).collect()
}

#[test]
fn a_nack_is_answered_from_history_as_rtx() {
    let (mut net, bob) = watching(Options { estimate_bandwidth: true, ..Options::default() });
    let received = &net.client(bob.client).received;
    // A packet received some 100 ms ago, well inside the history.
    let wanted = received[received.len() - 10].clone();

    let asked = nack(&mut net, bob.client, wanted.ssrc, wanted.seq);
    net.run_for(Duration::from_millis(100));

    let again = received_after(&net, bob.client, asked, &wanted);
    assert_eq!(again.len(), 1, "the NACKed packet comes back once");
    assert_eq!(again[0].payload, wanted.payload, "as first sent");
    assert!(
        again[0].at - asked <= 2 * LATENCY + Duration::from_millis(1),
        "answered at once: {:?}",
        again[0].at - asked
    );
    // On the wire it was an RTX packet: its own SSRC and payload type, unwrapped by the client.
    let repair: Vec<_> =
        net.client(bob.client).arrivals.iter().filter(|a| a.at == again[0].at && a.ssrc != wanted.ssrc).collect();
    assert_eq!(repair.len(), 1, "one RTX packet carried it");
    assert_eq!(repair[0].payload_type, PT_RTX);
    let original_stream = net.client(bob.client).arrivals.iter().filter(|a| a.at > asked && a.seq == wanted.seq);
    assert_eq!(original_stream.filter(|a| a.ssrc == wanted.ssrc).count(), 0, "not on the media stream");
}

#[test]
fn a_lost_packet_is_resent_on_its_stream_without_rtx() {
    let (mut net, bob) = watching(Options::default());
    let ssrc = net.client(bob.client).received.last().expect("video flows").ssrc;
    let addr = net.client(bob.client).addr;
    net.lose_next(addr, ssrc);
    net.run_for(Duration::from_millis(200));
    let (_, _, seq) = net.lost[0];
    let missing = |net: &Net| !net.client(bob.client).received.iter().any(|r| r.ssrc == ssrc && r.seq == seq);
    assert!(missing(&net), "the loss happened");

    // Without RTX the repair is the same packet on the same stream; the subscriber's SRTP would
    // refuse a copy of one it already has, so only a lost packet can be asked for here.
    let asked = nack(&mut net, bob.client, ssrc, seq);
    net.run_for(Duration::from_millis(100));
    let client = net.client(bob.client);
    let repaired: Vec<_> = client.received.iter().filter(|r| r.ssrc == ssrc && r.seq == seq).collect();
    assert_eq!(repaired.len(), 1, "the lost packet arrives");
    assert!(repaired[0].at > asked && repaired[0].at - asked <= 2 * LATENCY + Duration::from_millis(1));
    // It is the packet that was lost: its frame sits between its neighbours'.
    let frame_of = |s: u16| client.received.iter().find(|r| r.ssrc == ssrc && r.seq == s).and_then(|r| r.origin);
    let (before, lost, after) = (frame_of(seq.wrapping_sub(1)), repaired[0].origin, frame_of(seq.wrapping_add(1)));
    let frames = [before, lost, after].map(|o| o.expect("a packet the publisher wrote").frame);
    assert!(frames[0] <= frames[1] && frames[1] <= frames[2], "{frames:?}");
}
