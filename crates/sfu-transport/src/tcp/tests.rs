//! The ICE-TCP port with real sockets on loopback: peers that are not WebRTC clients are closed,
//! each for its reason, and none of them holds the port up for the others.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::sockets::AUTH_TIMEOUT;
use crate::peer_factory::IceCredentials;
use crate::{MediaConfig, MediaPlane};

/// A plane of two shards with ICE-TCP on a free loopback port.
fn plane() -> (MediaPlane, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = MediaConfig {
        bind: IpAddr::from([127, 0, 0, 1]),
        announce: None,
        udp_port_start: 0,
        tcp_port: port,
        shards: 2,
        bandwidth_estimation: false,
        dynacast: false,
    };
    let (events, events_rx) = mpsc::unbounded_channel();
    std::mem::forget(events_rx);
    (MediaPlane::start(&config, events).unwrap(), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Waits until the server closes `stream` (end of stream or reset); returns how long it took.
fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(15) {
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            // Reset: the server closed with our bytes unread.
            Err(_) => return start.elapsed(),
        }
    }
    panic!("not closed within 15 s");
}

fn binding_request(username: &str) -> Vec<u8> {
    let padded = username.len().div_ceil(4) * 4;
    let mut p = vec![0x00, 0x01];
    p.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    p.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    p.extend_from_slice(&[6; 12]);
    p.extend_from_slice(&[0x00, 0x06]);
    p.extend_from_slice(&(username.len() as u16).to_be_bytes());
    p.extend_from_slice(username.as_bytes());
    p.resize(20 + 4 + padded, 0);
    p
}

fn framed(datagram: &[u8]) -> Vec<u8> {
    super::framing::frame(datagram).unwrap().to_vec()
}

#[test]
fn peers_that_are_not_webrtc_clients_are_closed_each_for_its_reason() {
    let (_plane, addr) = plane();
    let silent = connect(addr);
    let opened = Instant::now();

    let mut garbage = connect(addr);
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: sfu\r\n\r\n").unwrap();
    let mut oversized = connect(addr);
    oversized.write_all(&u16::MAX.to_be_bytes()).unwrap();
    oversized.write_all(&[0x80; 1000]).unwrap();
    // Routed to shard 1 by its ufrag's form, then something other than STUN before any proof.
    let mut unproven = connect(addr);
    let ufrag = IceCredentials::for_shard(1).ufrag;
    unproven.write_all(&framed(&binding_request(&format!("{ufrag}:peer")))).unwrap();
    unproven.write_all(&framed(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap();
    // A shard this node does not have.
    let mut elsewhere = connect(addr);
    elsewhere.write_all(&framed(&binding_request(&format!("{}:peer", IceCredentials::for_shard(9).ufrag)))).unwrap();

    for (name, stream) in [
        ("garbage", &mut garbage),
        ("64 KiB frame", &mut oversized),
        ("DTLS before proof", &mut unproven),
        ("unknown shard", &mut elsewhere),
    ] {
        let after = closed_after(stream);
        assert!(after < AUTH_TIMEOUT, "{name}: closed at once, not by the timeout ({after:?})");
    }

    // A check naming a ufrag of the right form that no connection has: it reaches its shard, gets
    // no answer, and the connection goes with the timeout, as does the silent one.
    let mut unanswered = connect(addr);
    let check_sent = Instant::now();
    unanswered.write_all(&framed(&binding_request(&format!("{ufrag}:peer")))).unwrap();
    let mut silent = silent;
    closed_after(&mut silent);
    let silent_for = opened.elapsed();
    closed_after(&mut unanswered);
    let unanswered_for = check_sent.elapsed();
    for (name, lived) in [("silent", silent_for), ("unanswered", unanswered_for)] {
        assert!(lived >= AUTH_TIMEOUT - Duration::from_millis(500), "{name}: closed early, after {lived:?}");
        assert!(lived < AUTH_TIMEOUT + Duration::from_secs(5), "{name}: closed late, after {lived:?}");
    }

    // The port still takes connections: a check gets as far as its shard again.
    let mut again = connect(addr);
    again.write_all(&framed(&binding_request(&format!("{ufrag}:peer")))).unwrap();
    again.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(again.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "open, and silent: no answer to a ufrag nobody has"
    );
}
