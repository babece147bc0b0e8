//! The embedded server on real loopback sockets, driven by a hand-made TURN client over UDP, TCP
//! and TLS: credentials, the relay to the node's media socket and to nothing else, and bad
//! input.

mod common;

use common::*;
use sfu_turn::TlsSettings;
use sfu_turn::testing::{self, Attrs, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn peers(list: &[SocketAddr]) -> Attrs {
    Attrs { peers: list.to_vec(), ..Attrs::default() }
}

/// Allocates, permits the media socket and moves data both ways, by Send/Data indications and
/// then by a channel. Returns the relayed address.
async fn relay_both_ways<W: Wire>(
    s: &mut Session<W>,
    media: &tokio::net::UdpSocket,
    media_addr: SocketAddr,
) -> SocketAddr {
    let (user, pass) = credential("alice", 600);
    let ok = s.allocate(&user, &pass).await.expect("an answer to Allocate");
    assert_eq!((ok.error, ok.signed_with), (None, Some(true)), "{ok:?}");
    let relayed = ok.relayed.expect("XOR-RELAYED-ADDRESS");
    assert_eq!(ok.lifetime, Some(Duration::from_secs(600)));

    let r = s.ask(METHOD_CREATE_PERMISSION, &peers(&[media_addr])).await.unwrap();
    assert_eq!(r.error, None, "{r:?}");
    s.wire.send(&testing::send_indication(media_addr, b"binding request")).await;
    let (data, from) = recv_from(media).await.expect("the media socket gets the Send's data");
    assert_eq!((data.as_slice(), from), (&b"binding request"[..], relayed));
    media.send_to(b"binding response", relayed).await.unwrap();
    let back = testing::read(&s.wire.recv().await.expect("a Data indication"), None).unwrap();
    assert_eq!((back.peer, back.data.as_deref()), (Some(media_addr), Some(&b"binding response"[..])));

    let bind = Attrs { channel: Some(0x4000), ..peers(&[media_addr]) };
    assert_eq!(s.ask(METHOD_CHANNEL_BIND, &bind).await.unwrap().error, None);
    s.wire.send(&testing::channel_data(0x4000, b"srtp")).await;
    assert_eq!(recv_from(media).await, Some((b"srtp".to_vec(), relayed)));
    media.send_to(b"rtcp!", relayed).await.unwrap();
    assert_eq!(s.wire.recv().await, Some(testing::channel_data(0x4000, b"rtcp!")));
    relayed
}

#[tokio::test]
async fn udp_client_allocates_and_relays_to_the_media_socket_only() {
    let (media, media_addr) = media_socket().await;
    let turn = server(media_addr, None, Duration::from_secs(10)).await;
    let mut s = Session::new(UdpClient::new(turn.udp.unwrap()).await);
    let relayed = relay_both_ways(&mut s, &media, media_addr).await;

    // A foreign address is refused, by permission and by channel, and a Send to it never arrives.
    let (foreign, foreign_addr) = media_socket().await;
    let r = s.ask(METHOD_CREATE_PERMISSION, &peers(&[foreign_addr])).await.unwrap();
    assert_eq!((r.error, r.signed_with), (Some(403), Some(true)));
    let bind = Attrs { channel: Some(0x4001), ..peers(&[foreign_addr]) };
    assert_eq!(s.ask(METHOD_CHANNEL_BIND, &bind).await.unwrap().error, Some(403));
    s.wire.send(&testing::send_indication(foreign_addr, b"let me out")).await;
    assert!(tokio::time::timeout(Duration::from_millis(500), foreign.recv_from(&mut [0u8; 64])).await.is_err());
    // What the foreign socket sends to the relayed address does not reach the client.
    foreign.send_to(b"let me in", relayed).await.unwrap();
    media.send_to(b"marker", relayed).await.unwrap();
    assert_eq!(s.wire.recv().await, Some(testing::channel_data(0x4000, b"marker")));
    let stats = stats_until(&turn, |s| s.refused_peers >= 2 && s.dropped_no_permission >= 2).await;
    assert_eq!(stats.dropped_no_permission, 2);
    assert_eq!(stats.refused_peers, 2);
    assert_eq!(stats.allocations, 1);
    assert!(stats.bytes_to_peers >= 19 && stats.bytes_to_clients >= 21, "{stats:?}");

    // Deleting the allocation closes its relay socket: the media socket's packets go nowhere.
    let zero = Attrs { lifetime: Some(Duration::ZERO), ..Attrs::default() };
    assert_eq!(s.ask(METHOD_REFRESH, &zero).await.unwrap().lifetime, Some(Duration::ZERO));
    assert_eq!(stats_until(&turn, |s| s.allocations == 0).await.allocations, 0);
}

#[tokio::test]
async fn expired_and_forged_credentials_get_401() {
    let (_media, media_addr) = media_socket().await;
    let turn = server(media_addr, None, Duration::from_secs(10)).await;
    let mut s = Session::new(UdpClient::new(turn.udp.unwrap()).await);

    let (user, pass) = credential("alice", -60);
    let r = s.allocate(&user, &pass).await.unwrap();
    assert_eq!(r.error, Some(401), "expired: {r:?}");
    let (user, _) = credential("alice", 600);
    let r = s.allocate(&user, "Zm9yZ2VkIHBhc3N3b3Jk").await.unwrap();
    assert_eq!(r.error, Some(401), "forged: {r:?}");
    let other = sfu_turn::credentials::RestSecret::new(b"not the server's secret");
    let r = s.allocate(&user, &other.password_for(&user)).await.unwrap();
    assert_eq!(r.error, Some(401), "minted with another secret: {r:?}");
    let stats = stats_until(&turn, |s| s.auth_expired == 1 && s.auth_rejected == 2).await;
    assert_eq!((stats.auth_expired, stats.auth_rejected, stats.allocations), (1, 2, 0));
    // The same client with a good credential is served.
    let (user, pass) = credential("alice", 600);
    assert_eq!(s.allocate(&user, &pass).await.unwrap().error, None);
}

#[tokio::test]
async fn tcp_client_allocates_and_gets_padded_channel_data() {
    let (media, media_addr) = media_socket().await;
    let turn = server(media_addr, None, Duration::from_secs(10)).await;
    let stream = TcpStream::connect(turn.tcp.unwrap()).await.unwrap();
    let mut s = Session::new(StreamClient::new(stream));
    relay_both_ways(&mut s, &media, media_addr).await;
    // Closing the connection ends its allocation.
    drop(s);
    assert_eq!(stats_until(&turn, |s| s.allocations == 0).await.allocations, 0);
}

#[tokio::test]
async fn tls_client_allocates() {
    let (media, media_addr) = media_socket().await;
    let dir = std::env::temp_dir().join(format!("sfu-turn-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let tls = TlsSettings { port: 0, cert_file: dir.join("cert.pem"), key_file: dir.join("key.pem") };
    let turn = server(media_addr, Some(tls), Duration::from_secs(10)).await;

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(turn.tls.unwrap()).await.unwrap();
    let stream = connector.connect("localhost".try_into().unwrap(), tcp).await.expect("TLS handshake");
    let mut s = Session::new(StreamClient::new(stream));
    relay_both_ways(&mut s, &media, media_addr).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn garbage_oversized_and_silent_connections_are_closed_and_others_served() {
    let (media, media_addr) = media_socket().await;
    let turn = server(media_addr, None, Duration::from_millis(500)).await;
    let tcp = turn.tcp.unwrap();

    // A client with an allocation, before and after the bad ones.
    let mut good = Session::new(StreamClient::new(TcpStream::connect(tcp).await.unwrap()));
    let (user, pass) = credential("good", 600);
    assert_eq!(good.allocate(&user, &pass).await.unwrap().error, None);

    let mut garbage = StreamClient::new(TcpStream::connect(tcp).await.unwrap());
    garbage.stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(garbage.closed_by_server().await, "garbage closes the connection");

    let mut oversized = StreamClient::new(TcpStream::connect(tcp).await.unwrap());
    let mut frame = vec![0x40, 0x00, 0xff, 0xfc];
    frame.resize(4 + 65532, 7);
    // The server may close before reading it all.
    let _ = oversized.stream.write_all(&frame).await;
    assert!(oversized.closed_by_server().await, "a 64 KiB frame closes the connection");

    let mut silent = StreamClient::new(TcpStream::connect(tcp).await.unwrap());
    assert!(silent.closed_by_server().await, "silence past the first-frame timeout closes it");

    // Garbage over UDP is dropped; the UDP listener still answers.
    let udp = UdpClient::new(turn.udp.unwrap()).await;
    for bytes in
        [&b""[..], b"\x16\xfe\xfd\x00", &[0x00, 0x01, 0x00, 0x08][..], &[0xff; 1500][..], &[0x40, 0x00, 0xff, 0xff]]
    {
        udp.socket.send_to(bytes, udp.server).await.unwrap();
    }
    let mut s = Session::new(udp);
    let (user, pass) = credential("after", 600);
    assert_eq!(s.allocate(&user, &pass).await.unwrap().error, None);

    // The first client's allocation works as before.
    let r = good.ask(METHOD_CREATE_PERMISSION, &peers(&[media_addr])).await.unwrap();
    assert_eq!(r.error, None);
    good.wire.send(&testing::send_indication(media_addr, b"still here")).await;
    assert_eq!(recv_from(&media).await.map(|(d, _)| d), Some(b"still here".to_vec()));
    let stats = stats_until(&turn, |s| s.dropped_malformed >= 4).await;
    assert!(stats.dropped_malformed >= 4, "{stats:?}");
    assert_eq!(stats.allocations, 2);
}
