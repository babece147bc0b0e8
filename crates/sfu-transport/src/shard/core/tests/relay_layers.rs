//! Only the layers a node's subscribers use cross the link: each joins at a keyframe and leaves
//! two seconds after its last user, and what the far side asks for joins the publisher's
//! dynacast. The two nodes' control planes pass the shards' events on (`RelayGlue`).

use sfu_core::LayerSet;
use sfu_proto::LayerPreference;
use std::time::Duration;

use super::harness::{Net, Options};
use super::relay::{LINK, keys};
use super::session::{Publisher, Subscriber, wanting};
use crate::api::MediaEvent;
use crate::shard::relay::Direction;

const A: usize = 0;
const B0: usize = 1;
const B1: usize = 2;

fn settings(key: crate::TrackKey, layer: LayerPreference) -> sfu_proto::SubscriptionSettings {
    sfu_proto::SubscriptionSettings { layer, ..wanting(key) }
}

/// A publisher on A; on B, a subscriber (on another shard than the relay track) who wants the
/// lowest layer.
fn low_on_b(options: Options) -> (Net, Publisher, Publisher, Subscriber) {
    let mut net = Net::nodes(&[1, 2], options);
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let alice = net.publish(A, "alice");
    let (_, remote) = net.relay(LINK, &alice, A, B0);
    let bob = net.subscribe_with(B1, "bob", &remote, settings(remote.key(), LayerPreference::Low));
    (net, alice, remote, bob)
}

fn sent(net: &Net, layer: u8) -> u64 {
    net.core(A).relay_stats(LINK).map_or(0, |s| s.packets(Direction::Out, layer))
}

#[test]
fn only_the_layers_used_on_the_far_node_cross() {
    let (mut net, alice, _, bob) = low_on_b(Options::default());
    // Every layer joins at first; unused ones leave two seconds after B says what it uses.
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.core(A).relay_crossing(alice.key(), LINK), Some(LayerSet::EMPTY.with(0)));
    let before = [0, 1, 2].map(|layer| sent(&net, layer));
    net.run_for(Duration::from_secs(1));
    let after = [0, 1, 2].map(|layer| sent(&net, layer));
    assert!(after[0] > before[0] + 20, "layer 0 crosses: {before:?} -> {after:?}");
    assert_eq!((after[1], after[2]), (before[1], before[2]), "layers 1 and 2 stay home");
    let received = &net.client(bob.client).received;
    assert!(received.len() > 60);
    assert!(received.iter().rev().take(30).all(|r| r.origin.is_some_and(|o| o.layer == 0)));
}

#[test]
fn a_switch_to_the_top_layer_joins_it_at_a_keyframe_with_no_gap_on_the_link() {
    let (mut net, alice, remote, bob) = low_on_b(Options::default());
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.core(A).relay_crossing(alice.key(), LINK), Some(LayerSet::EMPTY.with(0)));

    net.set_subscription(B1, bob.conn, remote.key(), settings(remote.key(), LayerPreference::High));
    let since = net.now;
    let took = net.run_until("bob receives the top layer", Duration::from_secs(1), |net| {
        net.client(bob.client).received.iter().any(|r| r.at >= since && r.origin.is_some_and(|o| o.layer == 2))
    });
    let first =
        net.client(bob.client).received.iter().find(|r| r.at >= since && r.origin.is_some_and(|o| o.layer == 2));
    assert!(first.is_some_and(|r| r.keyframe), "the switch lands on a keyframe");
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert!(net.core(A).relay_crossing(alice.key(), LINK).is_some_and(|set| set.contains(2)));
    net.run_for(Duration::from_secs(1));
    // Layer 2 crossed at the start, stopped, and came back: its link sequence went on from the
    // last packet sent, so the receiving side saw no loss.
    assert_eq!(net.core(B0).relay_stats(LINK).unwrap().lost.get(), 0);
}

#[test]
fn the_far_nodes_wishes_join_the_publishers_dynacast() {
    let options = Options { dynacast: true, ..Options::default() };
    let (mut net, alice, remote, bob) = low_on_b(options);
    // A subscriber on A wants the lowest layer too.
    net.subscribe_with(A, "carol", &alice, settings(alice.key(), LayerPreference::Low));
    net.set_subscription(B1, bob.conn, remote.key(), settings(remote.key(), LayerPreference::High));
    net.run_for(Duration::from_secs(4));
    assert_eq!(net.core(A).link_demand_of(alice.key()), vec![(LINK, 2)]);
    let encoded = |net: &Net, since| {
        net.events_since(A, since)
            .filter_map(|e| match e {
                MediaEvent::EncodeLayers { layers, .. } => Some(layers.iter().filter(|(_, on)| *on).count()),
                _ => None,
            })
            .last()
    };
    assert_ne!(encoded(&net, net.now - Duration::from_secs(4)), Some(1), "the top layer is wanted on B");

    // Bob goes down to the lowest layer: nobody anywhere wants more, and 3 s later the
    // publisher is told to encode only that.
    let since = net.now;
    net.set_subscription(B1, bob.conn, remote.key(), settings(remote.key(), LayerPreference::Low));
    net.run_for(Duration::from_secs(4));
    assert_eq!(net.core(A).link_demand_of(alice.key()), vec![(LINK, 0)]);
    assert_eq!(encoded(&net, since), Some(1), "only the lowest layer is encoded");
}

#[test]
fn a_track_of_one_layer_keeps_crossing_while_the_far_node_uses_it() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let alice = net.publish_with_audio(A, "alice");
    let (_, remote) = net.relay(LINK, &alice, A, B0);
    let bob = net.subscribe_with(B1, "bob", &remote, settings(remote.key(), LayerPreference::Low));
    let microphone = alice.audio.as_ref().expect("alice publishes a microphone").key;
    // Past the two seconds after which a layer nobody uses leaves the link.
    net.run_for(Duration::from_secs(4));
    assert_eq!(net.core(A).relay_crossing(microphone, LINK), Some(LayerSet::EMPTY.with(0)));
    let audio_ssrc =
        |net: &Net| net.client(bob.client).received.iter().rev().find(|r| r.origin.is_none()).map(|r| r.ssrc);
    let heard = |net: &Net, ssrc| net.client(bob.client).received.iter().filter(|r| r.ssrc == ssrc).count();
    let ssrc = audio_ssrc(&net).expect("bob hears alice's microphone");
    let before = heard(&net, ssrc);
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, ssrc) > before + 20, "the microphone stopped crossing: {before} -> {}", heard(&net, ssrc));

    // Bob pauses it: nobody on B uses the microphone, and it leaves the link.
    let relayed_microphone = remote.audio.as_ref().expect("relayed too").key;
    let paused = sfu_proto::SubscriptionSettings { paused: true, ..wanting(relayed_microphone) };
    net.set_subscription(B1, bob.conn, relayed_microphone, paused);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.core(A).relay_crossing(microphone, LINK), Some(LayerSet::EMPTY));

    // And comes back when he resumes it, though nothing of it reaches B to tell its forwarder
    // that layer 0 is live.
    net.set_subscription(B1, bob.conn, relayed_microphone, wanting(relayed_microphone));
    let before = heard(&net, ssrc);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.core(A).relay_crossing(microphone, LINK), Some(LayerSet::EMPTY.with(0)));
    assert!(heard(&net, ssrc) > before + 20, "the microphone did not come back: {before} -> {}", heard(&net, ssrc));
}
