//! Repair across a link: the receiving node NACKs what the link lost (once per loss, whatever
//! the number of its subscribers) and the publisher's node resends it from the relay out's
//! history; subscribers' keyframe requests cross as at most one PLI per layer per window.

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu_core::SeqUnwrapper;
use std::time::{Duration, Instant};

use super::client::Feedback;
use super::harness::{ClientId, Net, Options};
use super::relay::{LINK, keys};
use super::session::Subscriber;

const A: usize = 0;
const B0: usize = 1;
const B1: usize = 2;

/// The share of packets missing from what `client` received of the stream it got the most of,
/// counting from `since` and leaving out the newest 100 (whose repairs may still be on their
/// way).
fn loss_at(net: &Net, client: ClientId, since: Instant) -> f64 {
    let received: Vec<_> = net.client(client).received.iter().filter(|r| r.at >= since).collect();
    let ssrc = received.last().expect("media arrived").ssrc;
    let mut unwrapper = SeqUnwrapper::new();
    let mut seqs: Vec<u64> = received.iter().filter(|r| r.ssrc == ssrc).map(|r| unwrapper.unwrap(r.seq)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let newest = *seqs.last().unwrap();
    seqs.retain(|s| *s + 100 <= newest);
    let span = seqs.last().unwrap() - seqs.first().unwrap() + 1;
    1.0 - seqs.len() as f64 / span as f64
}

fn subscribers(net: &mut Net, remote: &super::session::Publisher) -> Vec<Subscriber> {
    vec![net.subscribe(B0, "bob", remote), net.subscribe(B1, "carol", remote), net.subscribe(B1, "dave", remote)]
}

#[test]
fn with_five_percent_loss_on_the_link_subscribers_lose_almost_nothing() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let alice = net.publish(A, "alice");
    let (_, remote) = net.relay(LINK, &alice, A, B0);
    let bob = net.subscribe(B1, "bob", &remote);
    net.run_for(Duration::from_secs(1));

    let (a, b0) = (net.shards[A].addr, net.shards[B0].addr);
    net.set_path_loss(a, b0, 50);
    net.set_path_loss(b0, a, 50);
    let since = net.now;
    net.run_for(Duration::from_secs(6));

    let loss = loss_at(&net, bob.client, since);
    assert!(loss < 0.005, "bob lost {:.2} % of his stream", loss * 100.0);
    assert!(net.path_lost > 50, "the link did lose: {}", net.path_lost);
    let (sent, got) = (net.core(A).relay_stats(LINK).unwrap(), net.core(B0).relay_stats(LINK).unwrap());
    assert!(got.lost.get() > 20 && got.nacks.outbound.get() >= got.lost.get(), "B NACKed every loss");
    assert!(sent.retransmissions.get() > 20, "A resent: {}", sent.retransmissions.get());
    assert!(sent.nacks.inbound.get() <= got.nacks.outbound.get());
}

#[test]
fn one_loss_costs_one_nack_on_the_link_whatever_the_subscribers() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let alice = net.publish(A, "alice");
    let (track, remote) = net.relay(LINK, &alice, A, B0);
    let subscribers = subscribers(&mut net, &remote);
    net.run_for(Duration::from_secs(1));
    let nacks_before = net.core(B0).relay_stats(LINK).unwrap().nacks.outbound.get();
    let resent_before = net.core(A).relay_stats(LINK).unwrap().retransmissions.get();

    let since = net.now;
    net.lose_next(net.shards[B0].addr, track.ssrcs[2]);
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.lost.len(), 1, "the top layer lost a packet on the link");
    assert_eq!(net.core(B0).relay_stats(LINK).unwrap().nacks.outbound.get(), nacks_before + 1, "one NACK");
    assert_eq!(net.core(A).relay_stats(LINK).unwrap().retransmissions.get(), resent_before + 1, "one resend");
    for subscriber in &subscribers {
        assert_eq!(loss_at(&net, subscriber.client, since), 0.0, "every subscriber got the repair");
    }
}

#[test]
fn keyframe_requests_cross_at_most_once_per_layer_per_window() {
    let mut net = Net::nodes(&[1, 2], Options::default());
    net.link_nodes(LINK, &[A], &[B0, B1], keys(1), keys(2));
    let alice = net.publish(A, "alice");
    let (_, remote) = net.relay(LINK, &alice, A, B0);
    let subscribers = subscribers(&mut net, &remote);
    net.run_for(Duration::from_secs(2));
    let top_ssrc = net.client(alice.client).source.as_ref().unwrap().ssrcs[2];
    let plis_to_alice = |net: &Net, since: Instant| {
        let feedback = &net.client(alice.client).feedback;
        feedback.iter().filter(|(at, f)| *at >= since && *f == Feedback::KeyframeRequest { ssrc: top_ssrc }).count()
    };
    let crossed = |net: &Net| net.core(B0).relay_stats(LINK).unwrap().plis.outbound.get();
    let (since, crossed_before) = (net.now, crossed(&net));

    // Every subscriber asks for a keyframe every 100 ms for a second: 30 requests.
    for _ in 0..10 {
        for subscriber in &subscribers {
            let ssrc = net.client(subscriber.client).received.last().expect("video flows").ssrc;
            let pli = PictureLossIndication { sender_ssrc: 1, media_ssrc: ssrc };
            let now = net.now;
            net.client_mut(subscriber.client).send_rtcp(ssrc, vec![Box::new(pli)], now);
        }
        net.run_for(Duration::from_millis(100));
    }
    let crossed = crossed(&net) - crossed_before;
    assert!((1..=3).contains(&crossed), "{crossed} PLIs crossed the link in a second");
    assert_eq!(net.core(A).relay_stats(LINK).unwrap().plis.inbound.get() as usize, {
        net.core(B0).relay_stats(LINK).unwrap().plis.outbound.get() as usize
    });
    let to_alice = plis_to_alice(&net, since);
    assert!((1..=3).contains(&to_alice), "alice was asked {to_alice} times for her top layer's keyframe");
}
