//! Dynacast across shards: the publisher is told to stop encoding layers nobody wants (after a
//! grace period, so a short dip changes nothing) and to encode them again as soon as someone
//! wants them, whichever shard the subscribers are on.

use sfu_core::DYNACAST_PAUSE_DELAY;
use sfu_proto::LayerPreference;
use std::time::{Duration, Instant};

use super::harness::{Net, Options};
use super::media::LAYERS;
use super::session::{Publisher, wanting};
use crate::api::MediaEvent;

/// The encodings the publisher's shard asked for since `since`: when (after `since`), and which
/// layers are on, lowest first.
fn told(net: &Net, publisher: &Publisher, since: Instant) -> Vec<(Duration, [bool; 3])> {
    net.shards[publisher.conn.shard()]
        .events
        .iter()
        .filter(|(at, _)| *at >= since)
        .filter_map(|(at, event)| match event {
            MediaEvent::EncodeLayers { conn, key, layers } => {
                assert_eq!((*conn, *key), (publisher.conn, publisher.key()));
                let on = |rid: &str| layers.iter().any(|(r, active)| r.0 == rid && *active);
                Some((*at - since, LAYERS.map(|l| on(l.rid))))
            }
            _ => None,
        })
        .collect()
}

/// Does what the publisher's browser does with the shard's last word: encodes those layers.
fn obey(net: &mut Net, publisher: &Publisher, since: Instant) {
    let Some((_, layers)) = told(net, publisher, since).last().copied() else { return };
    for (layer, on) in layers.into_iter().enumerate() {
        net.client_mut(publisher.client).set_sending(layer, on);
    }
}

fn packets_sent(net: &Net, publisher: &Publisher) -> [u64; 3] {
    net.client(publisher.client).source.as_ref().unwrap().packets_sent
}

fn preferring(publisher: &Publisher, layer: LayerPreference) -> sfu_proto::SubscriptionSettings {
    let mut settings = wanting(publisher.key());
    settings.layer = layer;
    settings
}

#[test]
fn layers_nobody_wants_are_paused_and_wanted_ones_resume() {
    let mut net = Net::new(2, Options { dynacast: true, ..Options::default() });
    let start = net.now;
    let publisher = net.publish(0, "alice");

    // Nobody subscribes: every layer is paused once the grace period is over.
    net.run_for(DYNACAST_PAUSE_DELAY + Duration::from_millis(500));
    let first = told(&net, &publisher, start);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].0 >= DYNACAST_PAUSE_DELAY, "not before the grace period: {first:?}");
    assert_eq!(first[0].1, [false; 3]);
    obey(&mut net, &publisher, start);
    let sent = packets_sent(&net, &publisher);
    net.run_for(Duration::from_millis(500));
    assert_eq!(packets_sent(&net, &publisher), sent, "the publisher obeys");

    // A subscriber on the other shard wants the top layer: everything resumes at once.
    let joined = net.now;
    let bob = net.subscribe(1, "bob", &publisher);
    assert_eq!(told(&net, &publisher, joined), vec![(Duration::ZERO, [true; 3])], "resumed when asked");
    obey(&mut net, &publisher, joined);
    net.run_for(Duration::from_secs(1));
    let now_sent = packets_sent(&net, &publisher);
    assert!(now_sent.iter().zip(sent).all(|(now, then)| *now > then), "every layer flows again: {now_sent:?}");
    assert!(net.client(bob.client).received.iter().any(|r| r.origin.is_some_and(|o| o.layer == 2)));

    // Bob only wants the lowest layer now: the upper two are paused, after the grace period.
    let lowered = net.now;
    net.set_subscription(1, bob.conn, publisher.key(), preferring(&publisher, LayerPreference::Low));
    net.run_for(DYNACAST_PAUSE_DELAY - Duration::from_millis(100));
    assert_eq!(told(&net, &publisher, lowered), vec![], "a dip shorter than the grace period reaches nobody");
    net.run_for(Duration::from_millis(200));
    let after = told(&net, &publisher, lowered);
    assert_eq!(after.iter().map(|(_, l)| *l).collect::<Vec<_>>(), vec![[true, false, false]], "{after:?}");
    obey(&mut net, &publisher, lowered);

    // Carol, on the publisher's own shard, wants the middle one: the highest wanted anywhere.
    let joined = net.now;
    let carol = net.subscribe_with(0, "carol", &publisher, preferring(&publisher, LayerPreference::Medium));
    assert_eq!(told(&net, &publisher, joined), vec![(Duration::ZERO, [true, true, false])]);
    obey(&mut net, &publisher, joined);
    net.run_for(Duration::from_secs(1));
    assert!(net.client(carol.client).received.iter().any(|r| r.origin.is_some_and(|o| o.layer == 1)));

    // Both leave: everything is paused again, after the grace period.
    let left = net.now;
    net.close(1, bob.conn);
    net.close(0, carol.conn);
    net.run_for(DYNACAST_PAUSE_DELAY + Duration::from_millis(100));
    let last = told(&net, &publisher, left);
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(last[0].0 >= DYNACAST_PAUSE_DELAY && last[0].1 == [false; 3], "{last:?}");
}
