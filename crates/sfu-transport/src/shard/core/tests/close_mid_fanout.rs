//! A connection closing while its packets are on their way (datagrams on the wire, forwarded
//! packets in other shards' queues) leaves nothing behind on any shard: no connection, timer,
//! address or ufrag route, subscription, fan-out, demand or published track.

use std::time::{Duration, Instant};

use super::harness::{LATENCY, Net, Options};
use super::session::{Publisher, Subscriber};
use crate::shard::command::Command;

/// A publisher on shard 0 and subscribers on every shard, the shards' queues a couple of
/// milliseconds long so that forwarded packets are always in flight.
fn room() -> (Net, Publisher, Vec<Subscriber>) {
    let mut net = Net::new(3, Options { dynacast: true, estimate_bandwidth: true, ..Options::default() });
    net.shard_hop = Duration::from_millis(2);
    let publisher = net.publish(0, "alice");
    net.run_for(Duration::from_secs(1));
    let subscribers = [(0, "bob"), (1, "carol"), (1, "dave"), (2, "erin")]
        .map(|(shard, name)| net.subscribe(shard, name, &publisher))
        .into();
    net.run_for(Duration::from_secs(2));
    (net, publisher, subscribers)
}

/// Runs until the publisher's shard is in the middle of fanning a frame out to every other shard.
fn mid_fanout(net: &mut Net) {
    net.run_until("forwarded packets in flight to shards 1 and 2", Duration::from_secs(1), |net| {
        net.forwards_in_flight(1) > 0 && net.forwards_in_flight(2) > 0
    });
}

fn assert_forgotten(net: &Net, conn: crate::ConnId) {
    for shard in 0..net.shards.len() {
        let traces = net.core(shard).traces_of(conn);
        assert!(traces.is_empty(), "shard {shard} still holds {conn:?} in {traces:?}");
    }
}

/// Whether the last ICE check the client sent would still reach a connection.
fn still_routed(net: &Net, subscriber_or_publisher_client: usize) -> bool {
    let client = net.client(subscriber_or_publisher_client);
    let (to, check) = client.last_check.clone().expect("the client sent ICE checks");
    let shard = net.shards.iter().position(|s| s.addr == to).expect("a check to a shard");
    net.core(shard).route_of(&check, client.addr).is_some()
}

fn last_arrival(net: &Net, client: usize) -> Option<Instant> {
    net.client(client).arrivals.last().map(|a| a.at)
}

#[test]
fn subscribers_closing_mid_fanout_leave_nothing_behind() {
    let (mut net, publisher, subscribers) = room();
    let [bob, carol, dave, erin] = <[Subscriber; 4]>::try_from(subscribers).ok().unwrap();
    mid_fanout(&mut net);
    let closed = net.now;
    // One on the publisher's shard, one of two on shard 1, the only one on shard 2.
    net.close(0, bob.conn);
    net.close(1, carol.conn);
    net.close(2, erin.conn);
    // Their clients go on as if nothing happened: their checks keep coming.
    net.run_for(Duration::from_secs(2));

    for gone in [&bob, &carol, &erin] {
        assert_forgotten(&net, gone.conn);
        assert!(!still_routed(&net, gone.client), "a closed connection's ufrag and address route nothing");
        let last = last_arrival(&net, gone.client).expect("it had media");
        assert!(last <= closed + LATENCY, "media after the close: {:?}", last - closed);
    }
    assert_eq!(net.core(0).downstream_of(publisher.key()), vec![(1, 1)], "only dave's shard is sent the track");
    assert_eq!(net.core(0).demand_of(publisher.key()), vec![(1, 2)], "only dave's wish counts");
    assert!(net.core(2).traces_of_track(publisher.key()).is_empty(), "shard 2 forgot the track");
    let fed = net.client(dave.client).received.iter().filter(|r| r.at > closed + Duration::from_secs(1)).count();
    assert!(fed > 100, "dave is still fed: {fed}");
}

#[test]
fn a_publisher_closing_mid_fanout_leaves_nothing_behind() {
    let (mut net, publisher, subscribers) = room();
    mid_fanout(&mut net);
    let closed = net.now;
    net.close(0, publisher.conn);
    // What the control plane does next: every subscriber loses the track and gets a new offer.
    for subscriber in &subscribers {
        let (shard, conn, key) = (subscriber.conn.shard(), subscriber.conn, publisher.key());
        net.ask(shard, |reply| Command::RemoveDownTrack { conn, key, reply }).expect("the track is removed");
        let offer =
            net.ask(shard, |reply| Command::SubscriberOffer { conn, ice_restart: false, reply }).expect("offer");
        assert!(offer.tracks.is_empty(), "nothing left to send");
        let now = net.now;
        let sdp = net.client_mut(subscriber.client).answer(crate::sdp_candidates::tidy_candidates(&offer.sdp), now);
        net.ask(shard, |reply| Command::SubscriberAnswer { conn, sdp, reply }).expect("answer accepted");
    }
    net.run_for(Duration::from_secs(2));

    assert_forgotten(&net, publisher.conn);
    assert!(!still_routed(&net, publisher.client));
    for shard in 0..net.shards.len() {
        let traces = net.core(shard).traces_of_track(publisher.key());
        assert!(traces.is_empty(), "shard {shard} still holds the track in {traces:?}");
    }
    for subscriber in &subscribers {
        let client = net.client(subscriber.client);
        let late = client.received.iter().filter(|r| r.at > closed + LATENCY + net.shard_hop).count();
        assert_eq!(late, 0, "media after the publisher left");
        assert!(client.connected, "the subscriber's connection lives on");
        let traces = net.core(subscriber.conn.shard()).traces_of(subscriber.conn);
        assert!(!traces.iter().any(|t| t.starts_with("a subscription")), "{traces:?}");
    }
}
