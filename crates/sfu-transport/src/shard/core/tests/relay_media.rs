//! A track crosses a link between two nodes: published by a client on node A, received on
//! node B's shard as a relay track, and forwarded there to a subscriber on another of B's
//! shards as any published track would be.

use std::time::Duration;

use super::harness::{Net, Options};
use super::media::vp8_frame;
use super::relay::{LINK, keys};
use super::session::{Publisher, Subscriber};
use crate::shard::relay::{Direction, RelayDrop};

/// Node A has one shard; node B two (the relay track lands on one, the subscriber on the other).
const A: usize = 0;
const B0: usize = 1;
const B1: usize = 2;

/// A publisher on A, her camera and microphone relayed to B0, a subscriber on B1 receiving
/// them. Without `layer_aware` control planes (which pass nothing on), every layer crosses.
fn relayed_call(net: &mut Net, layer_aware: bool) -> (Publisher, Publisher, Subscriber) {
    let alice = net.publish_with_audio(A, "alice");
    let (_, remote) = net.relay(LINK, &alice, A, B0);
    if !layer_aware {
        net.relay_glue.clear();
    }
    let bob = net.subscribe(B1, "bob", &remote);
    (alice, remote, bob)
}

/// Whether `payload` is a packet the test publisher wrote, byte for byte after its VP8
/// descriptor (whose picture id each subscriber's forwarder renumbers).
fn written_by_publisher(payload: &[u8]) -> bool {
    let Some(origin) = super::media::origin(payload) else { return false };
    [false, true]
        .into_iter()
        .flat_map(|keyframe| vp8_frame(origin.layer, origin.frame, keyframe))
        .any(|written| written.len() == payload.len() && written[4..] == payload[4..])
}

#[test]
fn a_subscriber_on_another_node_receives_the_publishers_media() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let (_, _, bob) = relayed_call(&mut net, false);
    net.run_until("a keyframe reaches bob on node B", Duration::from_secs(2), |net| {
        net.client(bob.client).received.iter().any(|r| r.keyframe)
    });
    net.run_for(Duration::from_secs(2));

    let (video, audio): (Vec<_>, Vec<_>) = net.client(bob.client).received.iter().partition(|r| r.origin.is_some());
    assert!(video.len() > 200, "video flows: {} packets", video.len());
    assert!(video.iter().all(|r| written_by_publisher(&r.payload)), "every payload as the publisher wrote it");
    assert!(audio.len() > 50, "audio flows: {} packets", audio.len());
    assert!(audio.iter().all(|r| r.payload.len() == 100 && r.payload.iter().all(|b| *b == 0x60)), "as sent");
    let top = video.last().and_then(|r| r.origin).expect("the publisher's packets").layer;
    assert_eq!(top, 2, "bob gets the top layer, as from a publisher on his own node");

    let sent = net.core(A).relay_stats(LINK).expect("A has the link");
    let got = net.core(B0).relay_stats(LINK).expect("B0 has the link");
    for layer in 0..3 {
        assert!(sent.packets(Direction::Out, layer) > 0, "layer {layer} crosses");
        assert!(got.packets(Direction::In, layer) > 0, "layer {layer} arrives");
    }
    assert_eq!(got.decrypt_failures.get(), 0);
    assert_eq!(sent.drops(RelayDrop::SealFailed), 0);
    assert_eq!(net.core(B1).relay_stats(LINK).map(|s| s.packets(Direction::In, 2)), Some(0), "B1 gets it by command");
}

#[test]
fn with_wrong_keys_nothing_is_delivered_and_the_failures_are_counted() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.open_link_on(LINK, &[A], &[B0, B1], keys(1), keys(2));
    // B opens with keys A does not seal with.
    net.open_link_on(LINK, &[B0, B1], &[A], keys(2), keys(9));
    let (_, _, bob) = relayed_call(&mut net, true);
    net.run_for(Duration::from_secs(2));

    assert!(net.client(bob.client).received.is_empty(), "nothing reaches bob");
    let sent = net.core(A).relay_stats(LINK).unwrap().packets(Direction::Out, 2);
    let got = net.core(B0).relay_stats(LINK).unwrap();
    assert!(sent > 0, "A sent");
    assert_eq!(got.packets(Direction::In, 2), 0);
    assert!(got.decrypt_failures.get() >= sent, "{} failures of {sent} sent", got.decrypt_failures.get());
}

#[test]
fn removing_the_relay_out_stops_the_flow() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let (alice, _, bob) = relayed_call(&mut net, true);
    net.run_for(Duration::from_secs(1));
    assert!(!net.client(bob.client).received.is_empty());

    let keys = [alice.key(), alice.audio.as_ref().expect("a microphone").key];
    for key in keys {
        net.tell(A, crate::shard::command::Command::RemoveRelayOut { key, link: LINK });
        assert!(net.core(A).relay_outs_of(key).is_empty());
    }
    let traces = net.core(A).traces_of_link(LINK);
    assert_eq!(traces, ["an open link"], "nothing but the link itself");
    // What was on the wire still arrives.
    net.run_for(Duration::from_millis(50));
    let before = net.client(bob.client).received.len();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.client(bob.client).received.len(), before, "nothing more after the out is gone");
}

#[test]
fn closing_the_link_removes_everything_of_it() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let (_, remote, bob) = relayed_call(&mut net, true);
    net.run_for(Duration::from_secs(1));
    assert!(!net.core(B0).traces_of_link(LINK).is_empty());

    net.close_link_on(LINK, &[A, B0, B1]);
    for shard in [A, B0, B1] {
        let traces = net.core(shard).traces_of_link(LINK);
        assert!(traces.is_empty(), "shard {shard} still holds {traces:?}");
    }
    assert!(!net.core(B0).traces_of_track(remote.key()).contains(&"a published track".to_owned()));
    net.run_for(Duration::from_millis(50));
    let before = net.client(bob.client).received.len();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.client(bob.client).received.len(), before);
}

#[test]
fn stray_datagrams_from_a_peer_are_counted_and_others_stay_unroutable() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let (from_a, to_b0) = (net.shards[A].addr, net.shards[B0].addr);
    let stranger = std::net::SocketAddr::from(([10, 9, 9, 9], 4000));
    let rtp_of = |ssrc: u32| {
        let mut d = vec![0x80, 96, 0, 1, 0, 0, 0, 0];
        d.extend_from_slice(&ssrc.to_be_bytes());
        d.extend_from_slice(&[7; 40]);
        bytes::Bytes::from(d)
    };
    net.inject(from_a, to_b0, rtp_of(0xdead_beef));
    net.inject(stranger, to_b0, rtp_of(0xdead_beef));
    // RTCP naming A's link RTCP SSRC, but not sealed with A's key.
    let mut rtcp = vec![0x81, 206, 0, 4];
    rtcp.extend_from_slice(&net.relay_endpoint(A).rtcp_ssrc.to_be_bytes());
    rtcp.extend_from_slice(&[1; 40]);
    net.inject(stranger, to_b0, bytes::Bytes::from(rtcp));
    for junk in [&[][..], &[0x80], &[0x80, 200, 0], &[0xff; 64]] {
        net.inject(from_a, to_b0, bytes::Bytes::copy_from_slice(junk));
    }
    net.run_for(Duration::from_millis(20));
    let stats = net.core(B0).relay_stats(LINK).unwrap();
    assert_eq!(stats.unknown_ssrcs.get(), 1, "the unknown SSRC from A's address");
    assert_eq!(stats.decrypt_failures.get(), 1, "the RTCP that named A's shard but did not open");
}

#[test]
fn a_publisher_that_leaves_leaves_nothing_in_the_relay_tables() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let (alice, remote, _) = relayed_call(&mut net, true);
    net.run_for(Duration::from_millis(500));
    net.close(A, alice.conn);
    assert_eq!(net.core(A).traces_of_link(LINK), ["an open link"]);
    // The receiving node drops its relay track when its control plane says so.
    net.tell(B0, crate::shard::command::Command::RemoveRelayTrack { key: remote.key() });
    let audio = remote.audio.as_ref().expect("a microphone").key;
    net.tell(B0, crate::shard::command::Command::RemoveRelayTrack { key: audio });
    assert_eq!(net.core(B0).traces_of_link(LINK), ["an open link"]);
}
