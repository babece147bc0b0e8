//! A subscriber on another shard than its publisher starts on a layer the publisher sends.
//!
//! The publisher's top layer is off (as a browser's is while its uplink estimate is low). The
//! subscriber's shard has never seen the track, so it cannot tell a silent layer from one whose
//! packets have not come yet; the publisher's shard tells it which layers flow when it attaches
//! (`LayersFlowing`), and the subscriber starts at once on the best of those.

use std::time::Duration;

use super::harness::{Net, Options};

#[test]
fn a_subscriber_on_another_shard_starts_on_a_layer_that_flows() {
    let mut net = Net::new(2, Options::default());
    let publisher = net.publish(0, "alice");
    net.client_mut(publisher.client).set_sending(2, false);
    // Long enough for the publisher's shard to know which layers flow.
    net.run_for(Duration::from_secs(1));

    let subscriber = net.subscribe(1, "bob", &publisher);
    assert_eq!(net.core(0).downstream_of(publisher.key()), vec![(1, 1)], "the publisher's shard sends to shard 1");

    let waited = net.run_until("the subscriber receives video", Duration::from_secs(3), |net| {
        !net.client(subscriber.client).received.is_empty()
    });
    let first = net.client(subscriber.client).received[0].clone();
    let origin = first.origin.expect("a packet the publisher wrote");
    assert_eq!(origin.layer, 1, "starts on the best layer that flows, not the silent top one");
    assert!(first.keyframe, "starts at a keyframe");
    // Without the shard being told, it would wait for the silent top layer (300 ms, then fall back
    // to the lowest layer's keyframe).
    assert!(waited < Duration::from_millis(250), "first picture after {waited:?}");

    net.run_for(Duration::from_secs(2));
    let received = &net.client(subscriber.client).received;
    assert!(received.len() > 100, "video keeps flowing: {} packets", received.len());
    assert!(received.iter().all(|r| r.origin.is_some_and(|o| o.layer == 1)), "stays on layer 1");
    assert_eq!(net.core(1).forwarding(subscriber.conn, publisher.key()), Some((Some(1), Some(1))));
}
