//! What strangers and broken peers send: nothing of it disturbs a link that is up.

use std::time::Duration;

use sfu_cluster::mesh::frame::{FrameError, MAX_FRAME_LEN};
use sfu_cluster::mesh::handshake::{HandshakeMessage, Hello, Nonce};
use sfu_cluster::mesh::{DownReason, MAX_PENDING_HANDSHAKES, MESH_VERSION, PeerMessage};

use super::*;

/// Sends a message each way on the link and checks both arrive.
async fn still_linked(a: &mut Node, b: &mut Node, n: u32) {
    a.handle.send(&b.id, data(n)).unwrap();
    b.handle.send(&a.id, data(n + 1)).unwrap();
    assert_eq!(data_index(&b.expect_message().await.1), n);
    assert_eq!(data_index(&a.expect_message().await.1), n + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_silent_connections_are_closed_and_the_link_stays() {
    let (mut a, mut b) = linked_pair("ND_ha", "ND_hb").await;
    let addr = b.handle.local_addr();

    // An HTTP request: "GET " read as a length is far over the handshake's limit.
    let mut http = TcpStream::connect(addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // A frame of 4 GiB announced.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    huge.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    // A well-framed body that is not a handshake message.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(&plain_frame(b"\x00\x01\x02 not json")).await.unwrap();
    // A connection that never says anything.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let silent_since = std::time::Instant::now();

    for stream in [&mut http, &mut huge, &mut junk] {
        assert!(closed_within(stream, Duration::from_secs(3)).await < Duration::from_secs(3));
    }
    still_linked(&mut a, &mut b, 10).await;
    closed_within(&mut silent, PROMPT).await;
    let silent_for = silent_since.elapsed();
    assert!(silent_for >= Duration::from_millis(4500), "closed after {silent_for:?}");

    still_linked(&mut a, &mut b, 20).await;
    // Strangers' failures are counted apart from the peers' (the oversized frame, the junk and the
    // silent one; the HTTP request too).
    assert!(recorder::counter("sfu_relay_auth_failures_total", &[("peer", "unlisted")]) >= 4);
    assert_eq!(recorder::counter("sfu_relay_auth_failures_total", &[("peer", &a.label())]), 0);
    // Each was also reported (with no node), and nothing else happened.
    a.quiet(Duration::from_millis(100)).await;
    b.quiet(Duration::from_millis(100)).await;
    assert_eq!(b.stranger_failures, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_from_an_unlisted_node_is_refused() {
    let (mut a, mut b) = linked_pair("ND_a", "ND_b").await;
    let mut stranger = TcpStream::connect(b.handle.local_addr()).await.unwrap();
    let hello = HandshakeMessage::Hello(Hello {
        node: "ND_0".into(),
        boot: "x".into(),
        nonce: Nonce([0; 32]),
        shards: vec![],
        version: MESH_VERSION,
        mac: None,
    });
    stranger.write_all(&plain_frame(&hello.encode())).await.unwrap();
    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let answer = read_frame(&mut stranger, &mut decoder).await.expect("a refusal");
    assert_eq!(
        HandshakeMessage::decode(&answer).unwrap(),
        HandshakeMessage::Refuse { reason: sfu_cluster::mesh::RefuseReason::UnexpectedPeer }
    );
    closed_within(&mut stranger, Duration::from_secs(3)).await;
    still_linked(&mut a, &mut b, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_in_progress_are_capped() {
    let (mut a, mut b) = linked_pair("ND_a", "ND_b").await;
    let addr = b.handle.local_addr();
    let mut silent = Vec::new();
    for _ in 0..MAX_PENDING_HANDSHAKES {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // The listener takes them in order; give it a moment to take all of them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut over, Duration::from_secs(2)).await < Duration::from_secs(2));
    still_linked(&mut a, &mut b, 0).await;
    // Once they time out, connections are taken again.
    for stream in &mut silent {
        closed_within(stream, PROMPT).await;
    }
    let mut later = TcpStream::connect(addr).await.unwrap();
    later.write_all(&plain_frame(b"junk")).await.unwrap();
    closed_within(&mut later, Duration::from_secs(3)).await;
    still_linked(&mut a, &mut b, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_oversized_frame_closes_the_link_and_is_counted() {
    let mut b = Node::start("ND_b", "b1", 7);
    b.handle.set_peers(vec![b.entry(), ("ND_a_t".into(), "a1".into(), "127.0.0.1:23".parse().unwrap())]);

    // A tampered frame.
    let mut raw = RawPeer::dial(&b, "ND_a_t", "a1", 7).await;
    b.expect_up().await;
    let mut frame = raw.sealer.seal(&data(1).encode()).unwrap();
    frame[10] ^= 0x40;
    raw.stream.write_all(&frame).await.unwrap();
    let (_, _, reason) = b.expect_down().await;
    assert_eq!(reason, DownReason::BadFrame(FrameError::Open { counter: 0 }));
    closed_within(&mut raw.stream, PROMPT).await;
    assert_eq!(recorder::counter("sfu_relay_frame_errors_total", &[("peer", "ND_a_t"), ("kind", "open")]), 1);

    // A replayed frame: the first one sent again.
    let mut raw = RawPeer::dial(&b, "ND_a_t", "a1", 7).await;
    b.expect_up().await;
    let frame = raw.sealer.seal(&data(1).encode()).unwrap();
    raw.stream.write_all(&frame).await.unwrap();
    assert_eq!(data_index(&b.expect_message().await.1), 1);
    raw.stream.write_all(&frame).await.unwrap();
    assert_eq!(b.expect_down().await.2, DownReason::BadFrame(FrameError::Open { counter: 1 }));

    // An oversized frame on an established link.
    let mut raw = RawPeer::dial(&b, "ND_a_t", "a1", 7).await;
    b.expect_up().await;
    raw.stream.write_all(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes()).await.unwrap();
    assert_eq!(
        b.expect_down().await.2,
        DownReason::BadFrame(FrameError::TooLong { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_a_newer_kind_is_skipped_and_the_link_kept() {
    let mut b = Node::start("ND_b", "b1", 7);
    b.handle.set_peers(vec![b.entry(), ("ND_a_n".into(), "a1".into(), "127.0.0.1:24".parse().unwrap())]);
    let mut raw = RawPeer::dial(&b, "ND_a_n", "a1", 7).await;
    b.expect_up().await;
    raw.send_raw(br#"{"type":"subscribe","room":"r","track":"TR_1","ssrcs":[1,2]}"#).await;
    raw.send_raw(br#"{"type":"room_bye"}"#).await;
    raw.send(&PeerMessage::RoomBye { room: "r".into() }).await;
    let (from, message) = b.expect_message().await;
    assert_eq!((from.as_str(), message), ("ND_a_n", PeerMessage::RoomBye { room: "r".into() }));
    assert_eq!(recorder::counter("sfu_relay_frame_errors_total", &[("peer", "ND_a_n"), ("kind", "undecodable")]), 2);
    b.handle.send(&"ND_a_n".into(), data(5)).unwrap();
    loop {
        match raw.recv().await {
            PeerMessage::Ping { .. } => continue,
            message => break assert_eq!(data_index(&message), 5),
        }
    }
    b.quiet(Duration::from_millis(200)).await;
}
