//! SIGTERM drains the server: it turns unready, refuses new sessions (signaling, WHIP) with
//! `draining`, keeps the sessions it has until the drain timeout, then closes them with 1001
//! and exits cleanly; with nobody connected it exits at once, and a second signal cuts the
//! drain short.
//!
//! Each test runs the built binary on its own high ports (17960-17985), in dev mode on loopback.

mod support;

use std::process::ExitStatus;
use std::time::{Duration, Instant};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use support::signal::{http, join_room, read_until};
use support::{LogFile, Running, sfu, start_until_listening};

const ROOM: &str = "drain";

fn join(port: u16, identity: &str) -> support::signal::Socket {
    join_room(port, ROOM, identity)
}

fn token(port: u16, identity: &str) -> String {
    support::signal::token(port, ROOM, identity)
}

fn sigterm(server: &Running) {
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let rc = unsafe { libc::kill(server.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

fn wait_exit(server: &mut Running, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running {within:?} after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_then_closes_the_remaining_sessions() {
    let port = 17960;
    let log = LogFile::new("drain");
    let mut cmd = sfu(port);
    cmd.env("SFU_CLUSTER__DRAIN_TIMEOUT_SECS", "3");
    let (mut server, _) = start_until_listening(cmd, &log);
    assert_eq!(http(port, "GET", "/readyz", &[], "").0, 200);
    let mut alice = join(port, "alice");
    read_until(&mut alice, "joined").expect("alice joins");

    sigterm(&server);
    let signalled = Instant::now();
    let deadline = signalled + Duration::from_secs(5);
    while http(port, "GET", "/readyz", &[], "").0 != 503 {
        assert!(Instant::now() < deadline, "/readyz never said draining:\n{}", log.read());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http(port, "GET", "/readyz", &[], "");
    assert!(status == 503 && body.contains("draining"), "{status} {body}");
    assert_eq!(http(port, "GET", "/healthz", &[], "").0, 200, "liveness is not readiness");

    // Newcomers are refused, by signaling and by WHIP.
    let mut bob = join(port, "bob");
    let error = read_until(&mut bob, "error").expect("an error before the close");
    assert_eq!(error["code"], "draining", "{error}");
    let (code, reason) = read_until(&mut bob, "joined").expect_err("bob is not let in");
    assert_eq!(code, 4503);
    assert!(reason.starts_with("draining"), "{reason}");
    let bearer = format!("Bearer {}", token(port, "carol"));
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/sdp")];
    let (status, body) = http(port, "POST", "/whip/drain", &headers, "v=0\r\n");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"draining\""), "{body}");

    // Alice is still served: her ping is answered.
    alice.send(Message::text(r#"{"type":"ping","id":7}"#)).unwrap();
    let pong = read_until(&mut alice, "pong").expect("alice's session goes on while draining");
    assert_eq!(pong["id"], 7);

    // At the drain timeout she is told the server is going away, and it exits cleanly.
    let (code, reason) = read_until(&mut alice, "never").expect_err("closed at the drain timeout");
    let closed_after = signalled.elapsed();
    assert_eq!(code, u16::from(CloseCode::Away), "{reason}");
    assert!(closed_after >= Duration::from_millis(2500), "closed after {closed_after:?}, before the drain timeout");
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", log.read());
}

#[test]
fn sigterm_with_nobody_connected_exits_at_once() {
    let port = 17966;
    let log = LogFile::new("drain-empty");
    let (mut server, _) = start_until_listening(sfu(port), &log);
    sigterm(&server);
    // The drain timeout is 30 s by default: exiting well before says it did not wait for it.
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", log.read());
}

#[test]
fn a_second_signal_ends_the_drain() {
    let port = 17972;
    let log = LogFile::new("drain-twice");
    let (mut server, _) = start_until_listening(sfu(port), &log);
    let mut alice = join(port, "alice");
    read_until(&mut alice, "joined").expect("alice joins");
    sigterm(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.read().contains("draining") {
        assert!(Instant::now() < deadline, "no drain logged:\n{}", log.read());
        std::thread::sleep(Duration::from_millis(20));
    }
    sigterm(&server);
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(!status.success(), "a cut-short drain is no clean exit: {status}");
    assert!(log.read().contains("second stop signal"), "{}", log.read());
}
