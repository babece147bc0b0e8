//! Wrong secrets, dead and silent peers.

use std::time::Duration;

use sfu_cluster::mesh::{AuthFailure, DownReason, HandshakeError, MeshConfig, MeshEvent, RefuseReason, SendError};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_links_nothing_and_is_counted_on_both_sides() {
    let (mut a, mut b) = (Node::start("ND_wa", "a1", 7), Node::start("ND_wb", "b1", 8));
    list_all(&[&a, &b]);
    // A finds B's MAC wrong; B hears A's refusal. Neither says PeerUp.
    match a.next().await {
        MeshEvent::AuthFailed { addr, node, reason } => {
            assert_eq!(addr, b.handle.local_addr());
            assert_eq!(node.as_ref().map(|n| n.as_str()), Some("ND_wb"));
            assert_eq!(reason, AuthFailure::Handshake(HandshakeError::BadMac));
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    match b.next().await {
        MeshEvent::AuthFailed { node, reason, .. } => {
            assert_eq!(node.as_ref().map(|n| n.as_str()), Some("ND_wa"));
            assert_eq!(reason, AuthFailure::Handshake(HandshakeError::Refused(RefuseReason::BadMac)));
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    assert_eq!(recorder::counter("sfu_relay_auth_failures_total", &[("peer", &b.label())]), 1);
    assert_eq!(recorder::counter("sfu_relay_auth_failures_total", &[("peer", &a.label())]), 1);
    // The dialer backs off (2 s, then 4 s): within 1.5 s nothing more happens.
    a.quiet(Duration::from_millis(1500)).await;
    assert!(a.handle.linked().is_empty() && b.handle.linked().is_empty());
    assert_eq!(a.handle.send(&b.id, data(0)), Err(SendError::NotLinked));
    assert_eq!(b.handle.send(&a.id, data(0)), Err(SendError::NotLinked));
    // The next attempt fails the same way; still no PeerUp and no message.
    assert!(matches!(a.next().await, MeshEvent::AuthFailed { .. }));
    assert!(matches!(b.next().await, MeshEvent::AuthFailed { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_shorter_than_32_bytes_is_refused_at_start() {
    let config = MeshConfig {
        me: "ND_a".into(),
        boot: "a1".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: vec![1; 31],
        shards: vec![],
    };
    assert!(!format!("{config:?}").contains("[1, 1"), "the secret is not printed");
    let error = sfu_cluster::mesh::Mesh::start(config).map(|_| ()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_mesh_goes_down_at_once_and_comes_back_when_restarted() {
    // The dialer dropped, then the responder.
    for dropped in ["ND_a", "ND_b"] {
        let (a, b) = linked_pair("ND_a", "ND_b").await;
        let (gone, mut peer) = if a.id.as_str() == dropped { (a, b) } else { (b, a) };
        let started = std::time::Instant::now();
        drop(gone);
        let (node, _, reason) = peer.expect_down().await;
        assert_eq!(node.as_str(), dropped);
        assert_eq!(reason, DownReason::Closed);
        assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
        assert!(peer.handle.linked().is_empty());

        // Back with a new boot: linked again.
        let mut back = Node::start(dropped, "again", 7);
        list_all(&[&peer, &back]);
        let (node, boot, ..) = peer.expect_up().await;
        assert_eq!((node.as_str(), boot.as_str()), (dropped, "again"));
        back.expect_up().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gone_silent_is_declared_dead_after_five_seconds() {
    let mut b = Node::start("ND_b", "b1", 7);
    b.handle.set_peers(vec![b.entry(), ("ND_a".into(), "a1".into(), "127.0.0.1:21".parse().unwrap())]);
    // A hand-driven dialer completes the handshake, answers pings for two seconds, then
    // neither reads nor writes.
    let mut raw = RawPeer::dial(&b, "ND_a", "a1", 7).await;
    b.expect_up().await;
    let talk_until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(message) = tokio::time::timeout_at(talk_until, raw.recv()).await {
        if let PeerMessage::Ping { id, sent_us } = message {
            raw.send(&PeerMessage::Pong { id, sent_us }).await;
        }
    }
    let silent_since = std::time::Instant::now();
    let (node, _, reason) = b.expect_down().await;
    let silent_for = silent_since.elapsed();
    assert_eq!((node.as_str(), reason), ("ND_a", DownReason::Timeout));
    assert!(silent_for >= Duration::from_millis(3000) && silent_for < Duration::from_secs(8), "{silent_for:?}");
    closed_within(&mut raw.stream, PROMPT).await;

    // Silent from the start.
    let mut raw = RawPeer::dial(&b, "ND_a", "a1", 7).await;
    b.expect_up().await;
    let up_at = std::time::Instant::now();
    assert_eq!(b.expect_down().await.2, DownReason::Timeout);
    let silent_for = up_at.elapsed();
    assert!(silent_for >= Duration::from_millis(4500) && silent_for < Duration::from_secs(8), "{silent_for:?}");
    closed_within(&mut raw.stream, PROMPT).await;
}

/// A responder driven by hand: answers A's `Hello` honestly, then does `after_confirm`.
async fn raw_responder(
    after_confirm: fn(&mut Handshake, &[u8]) -> Option<Vec<u8>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let local = LocalNode { node: "ND_b".into(), boot: "b1".into(), shards: vec![] };
        let secret = ClusterSecret::new(secret(7)).unwrap();
        let mut handshake = Handshake::responder(local, &secret, rand::random(), Box::new(|_, _| true));
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        let hello = read_frame(&mut stream, &mut decoder).await.unwrap();
        handshake.handle_bytes(&hello).unwrap();
        let answer = handshake.poll_transmit().unwrap();
        stream.write_all(&plain_frame(&answer.encode())).await.unwrap();
        let confirm = read_frame(&mut stream, &mut decoder).await.unwrap();
        if let Some(reply) = after_confirm(&mut handshake, &confirm) {
            stream.write_all(&reply).await.unwrap();
        }
        // Hold the connection until the dialer gives up.
        closed_within(&mut stream, PROMPT).await;
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_whose_confirm_is_refused_never_says_peer_up() {
    use sfu_cluster::mesh::handshake::HandshakeMessage;
    // The responder refuses A's MAC.
    let (addr, responder) =
        raw_responder(|_, _| Some(plain_frame(&HandshakeMessage::Refuse { reason: RefuseReason::BadMac }.encode())))
            .await;
    let mut a = Node::start("ND_a", "a1", 7);
    a.handle.set_peers(vec![a.entry(), ("ND_b".into(), "b1".into(), addr)]);
    match a.next().await {
        MeshEvent::AuthFailed { reason, .. } => {
            assert_eq!(reason, AuthFailure::Handshake(HandshakeError::Refused(RefuseReason::BadMac)))
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    responder.await.unwrap();
    assert!(a.handle.linked().is_empty());

    // The responder accepts it but never sends a frame: A gives up at the handshake's deadline.
    let (addr, responder) = raw_responder(|handshake, confirm| {
        handshake.handle_bytes(confirm).unwrap();
        assert!(handshake.poll_established().is_some());
        None
    })
    .await;
    let mut a = Node::start("ND_a", "a1", 7);
    a.handle.set_peers(vec![a.entry(), ("ND_b".into(), "b1".into(), addr)]);
    match a.next().await {
        MeshEvent::AuthFailed { reason, .. } => assert_eq!(reason, AuthFailure::Timeout),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    responder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_pings_stays_up() {
    let mut b = Node::start("ND_b", "b1", 7);
    b.handle.set_peers(vec![b.entry(), ("ND_a".into(), "a1".into(), "127.0.0.1:22".parse().unwrap())]);
    let mut raw = RawPeer::dial(&b, "ND_a", "a1", 7).await;
    b.expect_up().await;
    // Seven seconds of answered pings and nothing else: the link holds.
    let until = tokio::time::Instant::now() + Duration::from_secs(7);
    let mut pings = 0;
    while tokio::time::Instant::now() < until {
        if let Ok(message) = tokio::time::timeout_at(until, raw.recv()).await {
            match message {
                PeerMessage::Ping { id, sent_us } => {
                    pings += 1;
                    raw.send(&PeerMessage::Pong { id, sent_us }).await;
                    raw.send(&PeerMessage::Ping { id, sent_us: 0 }).await;
                }
                PeerMessage::Pong { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert!((5..=9).contains(&pings), "{pings} pings in 7 s");
    assert_eq!(b.handle.linked(), ["ND_a".into()]);
    b.quiet(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_mesh() {
    let (a, mut b) = linked_pair("ND_a", "ND_b").await;
    let Node { handle, mut events, .. } = a;
    let also = handle.clone();
    drop(handle);
    // One clone keeps it running.
    b.quiet(Duration::from_millis(1500)).await;
    drop(also);
    match tokio::time::timeout(PROMPT, events.recv()).await.unwrap() {
        Some(MeshEvent::PeerDown { node, reason, .. }) => {
            assert_eq!((node.as_str(), reason), ("ND_b", DownReason::Shutdown));
        }
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(PROMPT, events.recv()).await.unwrap().is_none(), "the mesh stopped");
    assert_eq!(b.expect_down().await.2, DownReason::Closed);
}
