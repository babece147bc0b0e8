//! Keyframe requests travel from subscribers, through their shard, to the publisher's shard and
//! on to the publisher, which hears at most one per layer per throttle window however many ask.

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu_core::KEYFRAME_REQUEST_INTERVAL;
use sfu_proto::LayerPreference;
use std::time::{Duration, Instant};

use super::client::Feedback;
use super::harness::{Net, Options};
use super::session::{Publisher, wanting};

/// The keyframe requests the publisher heard for `layer` since `since`.
fn requests_for(net: &Net, publisher: &Publisher, layer: usize, since: Instant) -> Vec<Instant> {
    let client = net.client(publisher.client);
    let ssrc = client.source.as_ref().unwrap().ssrcs[layer];
    client
        .feedback
        .iter()
        .filter(|(at, f)| *at >= since && *f == Feedback::KeyframeRequest { ssrc })
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn a_burst_of_plis_reaches_the_publisher_throttled() {
    let mut net = Net::new(2, Options::default());
    let publisher = net.publish(0, "alice");
    net.run_for(Duration::from_secs(1));
    let subscriber = net.subscribe(1, "bob", &publisher);
    // Past the requests of the subscriber's start.
    net.run_for(Duration::from_secs(2));
    let received = &net.client(subscriber.client).received;
    let ssrc = received.last().expect("video flows").ssrc;
    assert!(received.iter().rev().take(50).all(|r| r.origin.is_some_and(|o| o.layer == 2)), "on the top layer");

    // A decoder in trouble: a PLI every 10 ms for 200 ms.
    let burst = net.now;
    for _ in 0..20 {
        let pli = PictureLossIndication { sender_ssrc: 1, media_ssrc: ssrc };
        let now = net.now;
        net.client_mut(subscriber.client).send_rtcp(ssrc, vec![Box::new(pli)], now);
        net.run_for(Duration::from_millis(10));
    }
    net.run_for(Duration::from_secs(1));

    let heard = requests_for(&net, &publisher, 2, burst);
    let latency = heard.first().map(|at| *at - burst);
    assert!(latency.is_some_and(|l| l < Duration::from_millis(50)), "the first PLI is relayed at once: {latency:?}");
    // The first at once; the rest of the burst folds into one more when the window ends.
    assert_eq!(heard.len(), 2, "PLIs heard by the publisher at {:?}", offsets(&heard, burst));
    assert!(heard[1] - heard[0] >= KEYFRAME_REQUEST_INTERVAL, "{:?}", offsets(&heard, burst));
    for layer in [0, 1] {
        assert!(requests_for(&net, &publisher, layer, burst).is_empty(), "no request for layer {layer}");
    }
    let keyframes = net.client(subscriber.client).received.iter().filter(|r| r.at > burst && r.keyframe).count();
    assert!((1..=2).contains(&keyframes), "the subscriber gets the keyframes it caused: {keyframes}");
}

#[test]
fn subscribers_switching_layer_together_cost_the_publisher_one_keyframe_per_window() {
    let mut net = Net::new(3, Options::default());
    let publisher = net.publish(0, "alice");
    net.run_for(Duration::from_secs(1));
    let subscribers: Vec<_> = [(0, "bob"), (1, "carol"), (2, "dave"), (2, "erin")]
        .map(|(shard, name)| (shard, net.subscribe(shard, name, &publisher)))
        .into();
    net.run_for(Duration::from_secs(2));

    // Everyone moves to the lowest layer at once: each shard asks the publisher's shard for its
    // keyframe.
    let switch = net.now;
    for (shard, subscriber) in &subscribers {
        let mut settings = wanting(publisher.key());
        settings.layer = LayerPreference::Low;
        net.set_subscription(*shard, subscriber.conn, publisher.key(), settings);
    }
    net.run_for(Duration::from_secs(2));

    let heard = requests_for(&net, &publisher, 0, switch);
    assert!(!heard.is_empty() && heard[0] - switch < Duration::from_millis(50), "{:?}", offsets(&heard, switch));
    let first_window = heard.iter().filter(|at| **at - heard[0] < KEYFRAME_REQUEST_INTERVAL).count();
    assert_eq!(first_window, 1, "three shards asking, one window: {:?}", offsets(&heard, switch));
    assert!(heard.len() <= 2, "{:?}", offsets(&heard, switch));
    for (_, subscriber) in &subscribers {
        let client = net.client(subscriber.client);
        let first_low = client.received.iter().find(|r| r.at > switch && r.origin.is_some_and(|o| o.layer == 0));
        assert!(first_low.is_some_and(|r| r.keyframe), "switches to layer 0 at its keyframe");
        assert_eq!(client.layers_since(switch), vec![2, 0], "top layer until the switch, then the lowest");
    }
}

fn offsets(times: &[Instant], from: Instant) -> Vec<Duration> {
    times.iter().map(|at| *at - from).collect()
}
