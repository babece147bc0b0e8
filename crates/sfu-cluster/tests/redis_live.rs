//! RedisCluster against a real redis-server: nodes find each other, share a room's record, and
//! clean up after themselves (a dead node's key expires, an unregistered one goes at once, the
//! last holder's leave deletes the record). Timing bounds are generous: the machine is shared.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use sfu_cluster::testing::{RedisServer, free_port};
use sfu_cluster::{Health, JOIN_WAIT, RedisCluster, StartError};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_each_other_share_a_room_and_the_last_leave_deletes_it() {
    let server = RedisServer::start();
    let a = RedisCluster::start(record("a"), &server.url()).expect("a starts");
    let b = RedisCluster::start(record("b"), &server.url()).expect("b starts");
    healthy(&[&a, &b], secs(5)).await;
    // Within one beat (2 s) of both being registered.
    eventually(secs(5), "a and b see each other", || (sees(&a, "b") && sees(&b, "a")).then_some(())).await;
    let offset = a.redis_offset_ms().expect("a beat answered");
    assert!(offset.abs() < 1000, "Redis's clock is this machine's: offset {offset} ms");

    let on_a = a.join_room(&room("r")).await;
    assert!(on_a.verified && on_a.peers.is_empty(), "{on_a:?}");
    assert!(on_a.sid.0.starts_with("RM_BTa_"), "a proposed the sid: {on_a:?}");
    let on_b = b.join_room(&room("r")).await;
    assert!(on_b.verified, "{on_b:?}");
    assert_eq!(on_b.sid, on_a.sid, "the first sid wins");
    assert_eq!(on_b.peers, [member("a")]);
    assert_eq!(b.room_peers(&room("r")), [member("a")]);
    // a hears of b from a beat that asks who holds its rooms (every fifth, so within 10 s).
    eventually(secs(13), "a lists b as a peer of r", || (a.room_peers(&room("r")) == [member("b")]).then_some(()))
        .await;

    let mut peek = Peek::connect(&server.url()).await;
    assert_eq!(peek.sid("r").await, Some(on_a.sid.0.clone()));
    // Beats have been steady for over a lease's life (6 s) by now: the last leave may delete.
    b.leave_room(&room("r"), false);
    until!(secs(3), "b's lease ended", peek.live_leases("r").await == [member("a").to_string()]);
    assert!(peek.sid("r").await.is_some(), "a still holds r");
    a.leave_room(&room("r"), false);
    until!(secs(3), "the last leave deletes the record", peek.sid("r").await.is_none());
    assert!(!peek.indexed("r").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_key_expires_and_others_stop_listing_it() {
    let server = RedisServer::start();
    let a = RedisCluster::start(record("a"), &server.url()).expect("a starts");
    let b = RedisCluster::start(record("b"), &server.url()).expect("b starts");
    healthy(&[&a, &b], secs(5)).await;
    eventually(secs(5), "a sees b", || sees(&a, "b").then_some(())).await;
    let mut peek = Peek::connect(&server.url()).await;
    assert!(peek.node_key("b").await);

    // Dropping the last handle ends b's supervisor: no more beats, no unregister.
    drop(b);
    let died = Instant::now();
    until!(secs(8), "b's key expires (6 s after its last beat)", !peek.node_key("b").await);
    assert!(died.elapsed() <= Duration::from_millis(6500), "key outlived its TTL: {:?}", died.elapsed());
    eventually(secs(4), "a stops listing b", || (!sees(&a, "b")).then_some(())).await;
    assert!(peek.node_key("a").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_node_is_gone_at_once() {
    let server = RedisServer::start();
    let a = RedisCluster::start(record("a"), &server.url()).expect("a starts");
    let b = RedisCluster::start(record("b"), &server.url()).expect("b starts");
    healthy(&[&a, &b], secs(5)).await;
    eventually(secs(5), "b sees a", || sees(&b, "a").then_some(())).await;
    a.join_room(&room("r")).await;
    let mut peek = Peek::connect(&server.url()).await;

    assert!(a.unregister(secs(3)).await, "Redis confirms");
    assert!(!peek.node_key("a").await);
    assert!(peek.live_leases("r").await.is_empty(), "a's lease ended");
    assert!(a.unregister(secs(1)).await, "asking again answers at once");
    eventually(secs(4), "b stops listing a at its next beat", || (!sees(&b, "a")).then_some(())).await;
    tokio::time::sleep(secs(3)).await;
    assert!(!peek.node_key("a").await, "an unregistered node beats no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_unreachable_at_boot_degrades_without_failing_start() {
    assert!(matches!(RedisCluster::start(record("a"), "not a url"), Err(StartError::InvalidUrl(_))));
    assert!(matches!(RedisCluster::start(record("a"), "http://127.0.0.1:1"), Err(StartError::InvalidUrl(_))));

    let port = free_port();
    let a = RedisCluster::start(record("a"), &format!("redis://127.0.0.1:{port}")).expect("starts without Redis");
    let asked = Instant::now();
    let lease = a.join_room(&room("r")).await;
    let waited = asked.elapsed();
    assert!(!lease.verified, "{lease:?}");
    assert!(lease.sid.0.starts_with("RM_BTa_"), "the sid a proposes: {lease:?}");
    assert!(waited >= JOIN_WAIT && waited < Duration::from_millis(800), "waited {waited:?}");
    tokio::time::sleep(secs(1)).await;
    assert_eq!(a.health(), Health::Degraded);

    let server = RedisServer::start_on(port);
    healthy(&[&a], secs(6)).await;
    let mut events = a.take_events().expect("first take");
    assert!(a.take_events().is_none(), "the receiver is handed out once");
    let mut peek = Peek::connect(&server.url()).await;
    until!(secs(4), "a's key and its room are written", {
        peek.node_key("a").await && peek.sid("r").await == Some(lease.sid.0.clone())
    });
    // The unverified join's answer comes as an event.
    let mut seen = Vec::new();
    until!(secs(4), "the late Joined event", {
        drain(&mut events, &mut seen);
        seen.iter()
            .any(|e| matches!(e, sfu_cluster::membership::MembershipEvent::Joined { sid, .. } if *sid == lease.sid))
    });
}
