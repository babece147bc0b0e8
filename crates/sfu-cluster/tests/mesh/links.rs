//! Links coming up, carrying messages, and following the listing.

use std::time::Duration;

use sfu_cluster::mesh::{DownReason, MeshEvent, PeerMessage, SendError};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_meshes_link_once_and_exchange_messages_in_order() {
    let (mut a, mut b) = (Node::start("ND_la", "a1", 7), Node::start("ND_lb", "b1", 7));
    // Each lists both nodes, itself included, as the registry does.
    list_all(&[&a, &b]);
    let (node, boot, keys_a, shards, dialer) = a.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str(), dialer), ("ND_lb", "b1", true), "the lower id dials");
    assert_eq!(shards, shards_of("ND_lb"));
    let (node, boot, keys_b, shards, dialer) = b.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str(), dialer), ("ND_la", "a1", false));
    assert_eq!(shards, shards_of("ND_la"));
    assert_eq!(keys_a.srtp_out, keys_b.srtp_in);
    assert_eq!(keys_a.srtp_in, keys_b.srtp_out);
    assert_eq!(keys_a.ctl_out, keys_b.ctl_in);
    assert_eq!(keys_a.ctl_in, keys_b.ctl_out);
    assert_eq!(a.handle.linked(), [b.id.clone()]);
    assert_eq!(b.handle.linked(), [a.id.clone()]);
    assert_eq!(recorder::gauge("sfu_relay_link_up", &[("peer", &b.label())]), Some(1.0));
    assert_eq!(recorder::gauge("sfu_relay_link_up", &[("peer", &a.label())]), Some(1.0));

    // Both ways at once, in order.
    const N: u32 = 500;
    for i in 0..N {
        a.handle.send(&b.id, data(i)).unwrap();
        b.handle.send(&a.id, data(N + i)).unwrap();
    }
    for i in 0..N {
        let (from, message) = b.expect_message().await;
        assert_eq!((from.as_str(), data_index(&message)), ("ND_la", i));
        let (from, message) = a.expect_message().await;
        assert_eq!((from.as_str(), data_index(&message)), ("ND_lb", N + i));
    }
    let hello = PeerMessage::RoomBye { room: "standup".into() };
    a.handle.send(&b.id, hello.clone()).unwrap();
    assert_eq!(b.expect_message().await.1, hello);

    // Exactly one link: no second PeerUp, nothing else, while pings go both ways.
    a.quiet(Duration::from_millis(2500)).await;
    b.quiet(Duration::from_millis(100)).await;
    assert!(
        recorder::gauge("sfu_relay_rtt_seconds", &[("peer", &b.label())]).is_some_and(|rtt| rtt > 0.0 && rtt < 1.0)
    );
    let frames_in = recorder::counter("sfu_relay_control_frames_total", &[("peer", &a.label()), ("direction", "in")]);
    assert!(frames_in >= u64::from(N) + 2, "{frames_in}");

    assert_eq!(a.handle.send(&"ND_z".into(), hello.clone()), Err(SendError::NotLinked));
    assert_eq!(a.handle.send(&b.id, PeerMessage::Ping { id: 1, sent_us: 0 }), Err(SendError::LinkInternal));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_a_frame_is_refused_and_the_link_stays() {
    let (mut a, mut b) = linked_pair("ND_a", "ND_b").await;
    let huge =
        PeerMessage::Data { room: "r".into(), from: "PA_1".into(), text: false, payload: vec![0; 800_000].into() };
    assert!(matches!(a.handle.send(&b.id, huge), Err(SendError::TooLarge { .. })));
    // Just below the limit passes.
    let big =
        PeerMessage::Data { room: "r".into(), from: "PA_1".into(), text: false, payload: vec![1; 700_000].into() };
    a.handle.send(&b.id, big.clone()).unwrap();
    assert_eq!(b.expect_message().await.1, big);
    a.quiet(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_restarted_under_the_same_id_replaces_its_old_link() {
    // The dialer restarts: the responder drops the old boot's link as soon as it sees the new
    // boot listed, and takes the new one.
    let (mut a1, mut b) = linked_pair("ND_a", "ND_b").await;
    let mut a2 = Node::start("ND_a", "a2", 7);
    list_all(&[&a2, &b]);
    let (node, boot, reason) = b.expect_down().await;
    assert_eq!((node.as_str(), boot.as_str(), reason), ("ND_a", "a1", DownReason::Restarted));
    let (node, boot, ..) = b.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str()), ("ND_a", "a2"));
    let (node, boot, ..) = a2.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str()), ("ND_b", "b1"));
    // The old run lost its link and is refused from now on (not an authentication failure).
    let (_, boot, _) = a1.expect_down().await;
    assert_eq!(boot.as_str(), "b1");
    a1.quiet(Duration::from_millis(1500)).await;
    assert_eq!(b.handle.linked(), [a2.id.clone()]);
    a2.handle.send(&b.id, data(1)).unwrap();
    let (from, message) = b.expect_message().await;
    assert_eq!((from.as_str(), data_index(&message)), ("ND_a", 1));

    // The responder restarts: the dialer drops the old link at once and dials the new boot.
    let mut b2 = Node::start("ND_b", "b2", 7);
    list_all(&[&a2, &b2]);
    let (node, boot, reason) = a2.expect_down().await;
    assert_eq!((node.as_str(), boot.as_str(), reason), ("ND_b", "b1", DownReason::Restarted));
    let (node, boot, ..) = a2.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str()), ("ND_b", "b2"));
    let (node, boot, ..) = b2.expect_up().await;
    assert_eq!((node.as_str(), boot.as_str()), ("ND_a", "a2"));
    drop(a1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_no_longer_listed_loses_its_link() {
    // Unlisted by the dialer: it drops the link and stops dialing.
    let (mut a, mut b) = linked_pair("ND_ua", "ND_ub").await;
    a.handle.set_peers(vec![a.entry()]);
    let (node, _, reason) = a.expect_down().await;
    assert_eq!((node.as_str(), reason), ("ND_ub", DownReason::Unlisted));
    let (node, _, reason) = b.expect_down().await;
    assert_eq!((node.as_str(), reason), ("ND_ua", DownReason::Closed));
    assert!(a.handle.linked().is_empty() && b.handle.linked().is_empty());
    assert_eq!(a.handle.send(&b.id, data(0)), Err(SendError::NotLinked));
    assert_eq!(recorder::gauge("sfu_relay_link_up", &[("peer", &b.label())]), Some(0.0));
    a.quiet(Duration::from_millis(1000)).await;
    b.quiet(Duration::from_millis(100)).await;

    // Listed again: linked again.
    list_all(&[&a, &b]);
    a.expect_up().await;
    b.expect_up().await;

    // Unlisted by the responder: it drops the link and refuses the dialer's attempts.
    b.handle.set_peers(vec![b.entry()]);
    let (_, _, reason) = b.expect_down().await;
    assert_eq!(reason, DownReason::Unlisted);
    let (_, _, reason) = a.expect_down().await;
    assert_eq!(reason, DownReason::Closed);
    a.quiet(Duration::from_millis(1500)).await;
    b.quiet(Duration::from_millis(100)).await;
    assert!(a.handle.linked().is_empty() && b.handle.linked().is_empty());
    assert_eq!(recorder::counter("sfu_relay_auth_failures_total", &[("peer", &b.label())]), 0, "not an auth failure");
}

/// On one thread nothing drains the queue while the test fills it, so the bound is exact.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_resets_the_link_and_it_comes_back() {
    let (mut a, mut b) = linked_pair("ND_a", "ND_b").await;
    let resets_before = recorder::counter("sfu_relay_resets_total", &[("peer", &b.label())]);
    for i in 0..sfu_cluster::mesh::QUEUE_MAX_FRAMES as u32 {
        a.handle.send(&b.id, data(i)).unwrap();
    }
    assert_eq!(a.handle.send(&b.id, data(0)), Err(SendError::Overflow));
    assert_eq!(a.handle.send(&b.id, data(0)), Err(SendError::NotLinked), "the link is being reset");
    assert_eq!(recorder::counter("sfu_relay_resets_total", &[("peer", &b.label())]), resets_before + 1);
    let (_, _, reason) = a.expect_down().await;
    assert_eq!(reason, DownReason::Overflow);
    // B sees the link go (whatever it received first) and both see it come back.
    loop {
        match b.next().await {
            MeshEvent::Message { .. } => continue,
            MeshEvent::PeerDown { reason, .. } => {
                // A reset with B's unread data in flight reads as a closed or a reset socket.
                assert!(matches!(reason, DownReason::Closed | DownReason::Io(_)), "{reason:?}");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    a.expect_up().await;
    b.expect_up().await;

    // The byte bound: a few large messages fill it.
    let big = |i: u8| PeerMessage::Data {
        room: "r".into(),
        from: "PA_1".into(),
        text: false,
        payload: vec![i; 600_000].into(),
    };
    let mut sent = 0;
    let overflow = loop {
        match a.handle.send(&b.id, big(sent)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 20, "8 MiB of 800 kB messages overflow by the eleventh");
    };
    assert_eq!(overflow, SendError::Overflow);
    assert_eq!(sent, 10, "800 kB each once encoded");
    assert_eq!(a.expect_down().await.2, DownReason::Overflow);
}
