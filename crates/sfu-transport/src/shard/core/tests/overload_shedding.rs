//! A shard that falls behind its socket sheds video layers for every subscriber on it, one
//! level at a time, and gives them back once it keeps up again; other shards are untouched.

use sfu_core::MAX_SHED_LEVEL;
use std::time::Duration;

use super::harness::{Net, Options};
use super::session::Subscriber;
use crate::shard::core::BACKLOG_SAMPLE_INTERVAL;

/// Far above what sheds (1 MiB), and far below what recovers (128 KiB).
const BEHIND: usize = 4 << 20;
const KEEPING_UP: usize = 0;

/// Runs `span` with the shell reporting `backlog` on shard 1 at its sampling pace.
fn with_backlog(net: &mut Net, backlog: usize, span: Duration) {
    let end = net.now + span;
    while net.now < end {
        net.report_backlog(1, backlog);
        net.run_for(BACKLOG_SAMPLE_INTERVAL);
    }
}

/// Every switch of layer a subscriber saw started at a keyframe.
fn switches_at_keyframes(net: &Net, subscriber: &Subscriber) -> bool {
    let received = &net.client(subscriber.client).received;
    received.windows(2).all(|pair| {
        let (before, after) = (pair[0].origin, pair[1].origin);
        before.map(|o| o.layer) == after.map(|o| o.layer) || after.is_none() || pair[1].keyframe
    })
}

#[test]
fn a_shard_behind_its_socket_sheds_layers_and_restores_them_when_it_catches_up() {
    let mut net = Net::new(2, Options::default());
    let publisher = net.publish(0, "alice");
    net.run_for(Duration::from_secs(1));
    let bob = net.subscribe(1, "bob", &publisher);
    let dave = net.subscribe(1, "dave", &publisher);
    let carol = net.subscribe(0, "carol", &publisher);
    net.run_for(Duration::from_secs(2));

    let behind = net.now;
    with_backlog(&mut net, BEHIND, Duration::from_secs(2));
    assert_eq!(net.core(1).shed_level(), MAX_SHED_LEVEL);
    assert_eq!(net.core(0).shed_level(), 0, "the other shard keeps up");
    for subscriber in [&bob, &dave] {
        assert_eq!(net.client(subscriber.client).layers_since(behind), vec![2, 1, 0], "one level at a time");
        assert_eq!(net.core(1).forwarding(subscriber.conn, publisher.key()), Some((Some(0), Some(0))));
    }
    assert_eq!(net.client(carol.client).layers_since(behind), vec![2], "shard 0's subscriber keeps the top");

    // A backlog that stays sheds no more than the most; its end gives the layers back slowly.
    with_backlog(&mut net, BEHIND, Duration::from_secs(2));
    let caught_up = net.now;
    with_backlog(&mut net, KEEPING_UP, Duration::from_secs(4));
    assert_eq!(net.core(1).shed_level(), MAX_SHED_LEVEL, "not before a quiet spell");
    with_backlog(&mut net, KEEPING_UP, Duration::from_secs(8));
    assert_eq!(net.core(1).shed_level(), 0);
    for subscriber in [&bob, &dave] {
        assert_eq!(net.client(subscriber.client).layers_since(caught_up), vec![0, 1, 2], "back up a level at a time");
        assert!(switches_at_keyframes(&net, subscriber), "every switch at a keyframe");
    }
}
