//! Clients whose only path is ICE-TCP. The core sees their frames as datagrams over TCP and
//! must answer and serve them exactly as UDP clients: ICE, DTLS, their published media to
//! subscribers on UDP, and media to them (written by the shard itself) over TCP.
//!
//! A client here has only an active TCP candidate, and the harness delivers a datagram to it only
//! over the transport it was sent on: one sent to it over UDP is lost. So a client that connects
//! and receives media proves the core sent it all over TCP.

use std::time::Duration;

use super::harness::{Net, Options, TCP_PORT};
use super::session::wanting;
use crate::remote::{Remote, Transport};
use crate::shard::command::Command;

fn net() -> Net {
    Net::new(2, Options { ice_tcp: true, ..Options::default() })
}

#[test]
fn a_subscriber_reached_only_over_tcp_receives_video_from_a_udp_publisher() {
    let mut net = net();
    let publisher = net.publish(0, "alice");
    let subscriber = net.subscribe_over(1, "bob", &publisher, Transport::Tcp);
    let bob = net.client(subscriber.client).addr;
    assert_eq!(net.core(1).validated(subscriber.conn), vec![Remote::tcp(bob)], "its TCP path, and only that");
    assert_eq!(net.core(1).media_dest(subscriber.conn), Some(Remote::tcp(bob)), "media follows the TCP pair");

    net.run_until("bob receives video", Duration::from_secs(3), |net| {
        net.client(subscriber.client).received.iter().any(|r| r.keyframe)
    });
    net.run_for(Duration::from_secs(2));
    let received = &net.client(subscriber.client).received;
    assert!(received.len() > 100, "video keeps flowing over TCP: {} packets", received.len());
    // The same address over UDP is nobody's.
    let media = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(net.core(1).route_of(&media, Remote::udp(bob)), None);
    assert_eq!(net.core(1).route_of(&media, Remote::tcp(bob)), Some(subscriber.conn));
}

#[test]
fn a_publisher_reached_only_over_tcp_is_forwarded_to_a_udp_subscriber() {
    let mut net = net();
    let publisher = net.publish_over(0, "carol", Transport::Tcp);
    let carol = net.client(publisher.client).addr;
    assert_eq!(net.core(0).validated(publisher.conn), vec![Remote::tcp(carol)]);
    let subscriber = net.subscribe(1, "dave", &publisher);
    net.run_until("dave receives carol's video", Duration::from_secs(3), |net| {
        net.client(subscriber.client).received.iter().any(|r| r.keyframe)
    });
    // Keyframe requests for dave reached carol over TCP (no other way there).
    let feedback = net.client(publisher.client).feedback.len();
    assert!(feedback > 0, "carol hears the shard's feedback");
}

#[test]
fn a_closed_tcp_path_routes_nothing_more() {
    let mut net = net();
    let publisher = net.publish(0, "alice");
    let subscriber = net.subscribe_over(0, "bob", &publisher, Transport::Tcp);
    let bob = Remote::tcp(net.client(subscriber.client).addr);
    net.run_for(Duration::from_millis(500));
    net.shards[0].core.handle_path_closed(bob);
    assert!(net.core(0).validated(subscriber.conn).is_empty());
    let media = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(net.core(0).route_of(&media, bob), None, "a new connection from there proves itself again");
}

#[test]
fn offers_and_answers_announce_a_passive_tcp_candidate_below_udp() {
    let mut net = net();
    let publisher = net.publish(0, "alice");
    let conn = net.allocate_conn(1);
    let owner = sfu_proto::ParticipantId("PA_bob".into());
    let spec = Box::new(publisher.down_track(&publisher.video, wanting(publisher.key())));
    net.ask(1, |reply| Command::AddDownTrack { conn, owner, spec, reply }).unwrap();
    let offer = net.ask(1, |reply| Command::SubscriberOffer { conn, ice_restart: false, reply }).unwrap();
    let sdp = crate::sdp_candidates::tidy_candidates(&offer.sdp);
    let candidates: Vec<Vec<&str>> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| c.split_ascii_whitespace().collect())
        .collect();
    let udp = candidates.iter().find(|c| c[2] == "udp").expect("a UDP host candidate");
    let tcp = candidates.iter().find(|c| c[2] == "tcp").expect("a TCP host candidate");
    let shard = net.shards[1].addr;
    assert_eq!((tcp[4], tcp[5]), (shard.ip().to_string().as_str(), TCP_PORT.to_string().as_str()));
    assert_eq!(&tcp[6..], ["typ", "host", "tcptype", "passive"]);
    let priority = |c: &Vec<&str>| c[3].parse::<u32>().unwrap();
    assert_eq!(priority(tcp), crate::peer_factory::TCP_PASSIVE_PRIORITY);
    assert!(priority(tcp) < priority(udp), "UDP is preferred");
    assert!(candidates.iter().all(|c| c[1] == "1"), "component 2 is tidied away");
}
