//! Real `sfu` processes in cluster mode with a real `redis-server` (no browsers): a room spans
//! two nodes (each side's participants see the other's, and the room has one sid), a node killed
//! with SIGKILL takes its participants with it within 6 s while the room lives on, and a node
//! with another secret gets no link.
//!
//! Loopback only; each node on its own high ports (18100-18179).

mod support;

use std::time::{Duration, Instant};

use sfu_cluster::testing::RedisServer;
use support::signal::{Socket, http, join_room, raw_http, read_next, read_until};
use support::{LogFile, Running, sfu, start_until_listening};

const SECRET: &str = "cluster-test-secret-0123456789-abcdef";

/// A node of the cluster on `http_port` (its shard's UDP port is `http_port + 2`, its relay
/// port `http_port + 5`).
fn node(redis: &RedisServer, name: &str, http_port: u16, secret: &str, log: &LogFile) -> Running {
    let mut cmd = sfu(http_port);
    cmd.env("SFU_CLUSTER__REDIS_URL", redis.url())
        .env("SFU_CLUSTER__SECRET", secret)
        .env("SFU_CLUSTER__NODE_ID", name)
        .env("SFU_CLUSTER__RELAY_ADDR", format!("127.0.0.1:{}", http_port + 5));
    start_until_listening(cmd, log).0
}

/// Reads messages until `done` says so (returns that message), or panics after `within`.
fn read_for(
    socket: &mut Socket,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "no {what} within {within:?}");
        let message = read_next(socket).unwrap_or_else(|close| panic!("closed {close:?} before {what}"));
        if done(&message) {
            return message;
        }
    }
}

fn is_joined_by(message: &serde_json::Value, identity: &str) -> bool {
    let listed = |p: &serde_json::Value| p["identity"] == identity;
    match message["type"].as_str() {
        Some("joined") => message["participants"].as_array().is_some_and(|ps| ps.iter().any(listed)),
        Some("participant_joined") => listed(&message["participant"]),
        _ => false,
    }
}

fn metric(port: u16, name: &str) -> f64 {
    let (_, body) = http(port, "GET", "/metrics", &[], "");
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_room_spans_two_nodes_and_a_killed_node_takes_its_participants_with_it() {
    let redis = RedisServer::start();
    let (log_a, log_b) = (LogFile::new("cluster-a"), LogFile::new("cluster-b"));
    let mut a = node(&redis, "node-a", 18100, SECRET, &log_a);
    let _b = node(&redis, "node-b", 18110, SECRET, &log_b);

    let mut alice = join_room(18100, "span", "alice");
    let alice_joined = read_until(&mut alice, "joined").expect("alice joins on A");
    let mut bob = join_room(18110, "span", "bob");
    // Bob sees Alice: in his `joined`, or once the nodes have linked (a beat, 2 s, then the
    // handshake), as `participant_joined`.
    let started = Instant::now();
    let bob_joined = read_for(&mut bob, Duration::from_secs(15), "alice on B", |m| {
        m["type"] == "joined" || is_joined_by(m, "alice")
    });
    if !is_joined_by(&bob_joined, "alice") {
        read_for(&mut bob, Duration::from_secs(15), "alice on B", |m| is_joined_by(m, "alice"));
    }
    let linked_after = started.elapsed();
    read_for(&mut alice, Duration::from_secs(15), "bob on A", |m| is_joined_by(m, "bob"));
    assert_eq!(alice_joined["room_sid"], bob_joined["room_sid"], "one room, one sid, whatever the node");
    assert!(alice_joined["room_sid"].as_str().is_some_and(|s| s.starts_with("RM_")));
    assert_eq!(metric(18100, "sfu_relay_link_up"), 1.0);
    eprintln!("bob saw alice {linked_after:?} after joining");
    // Each node's key carries its load: its participants, its capacity, its shards' busy share.
    let deadline = Instant::now() + Duration::from_secs(6);
    while redis_cli(&redis, &["HGET", "sfu:node:node-b", "participants"]) != "1" {
        assert!(Instant::now() < deadline, "{}", redis_cli(&redis, &["HGETALL", "sfu:node:node-b"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(redis_cli(&redis, &["HGET", "sfu:node:node-b", "capacity"]), "5000");
    let busy: f32 = redis_cli(&redis, &["HGET", "sfu:node:node-b", "busy"]).parse().unwrap();
    assert!((0.0..=1.0).contains(&busy), "{busy}");

    // A dies without a word: B reports Alice gone within 6 s, and the room goes on there.
    a.0.kill().unwrap();
    let killed = Instant::now();
    let left = read_for(&mut bob, Duration::from_secs(10), "alice leaving", |m| m["type"] == "participant_left");
    let gone_after = killed.elapsed();
    assert_eq!(left["identity"], "alice");
    assert!(gone_after <= Duration::from_secs(6), "B saw alice leave {gone_after:?} after the kill");
    eprintln!("B saw alice leave {gone_after:?} after A was killed");
    let mut carol = join_room(18110, "span", "carol");
    let carol_joined = read_until(&mut carol, "joined").expect("carol joins on B");
    assert_eq!(carol_joined["room_sid"], bob_joined["room_sid"], "the room lives on with its sid");
    let listed: Vec<&str> =
        carol_joined["participants"].as_array().unwrap().iter().filter_map(|p| p["identity"].as_str()).collect();
    assert_eq!(listed, ["bob"]);
}

#[test]
fn a_node_with_another_secret_gets_no_link_and_sees_nobody() {
    let redis = RedisServer::start();
    let (log_b, log_c) = (LogFile::new("cluster-secret-b"), LogFile::new("cluster-secret-c"));
    let _b = node(&redis, "node-b", 18120, SECRET, &log_b);
    let _c = node(&redis, "node-c", 18130, "another-secret-of-enough-length-0123456789", &log_c);
    let mut bob = join_room(18120, "split", "bob");
    read_until(&mut bob, "joined").expect("bob joins on B");
    let mut carol = join_room(18130, "split", "carol");
    read_until(&mut carol, "joined").expect("carol joins on C");

    // Within a few beats the nodes have tried; the handshakes fail and are counted on both.
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(18120, "sfu_relay_auth_failures_total") == 0.0 || metric(18130, "sfu_relay_auth_failures_total") == 0.0
    {
        assert!(Instant::now() < deadline, "no refused handshake counted:\n{}\n{}", log_b.read(), log_c.read());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(18120, "sfu_relay_link_up"), 0.0);
    assert_eq!(metric(18130, "sfu_relay_link_up"), 0.0);
    // Neither hears of the other.
    bob.get_ref().set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    for _ in 0..4 {
        match bob.read() {
            Ok(tungstenite::Message::Text(text)) => assert!(!text.contains("carol"), "{text}"),
            Ok(_) => {}
            Err(_) => {} // nothing within 500 ms
        }
    }
}

fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli (apt install redis-tools) runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until every key exists in Redis; returns how long that took.
fn keys_back(redis: &RedisServer, keys: &[&str], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let mut args = vec!["EXISTS"];
        args.extend_from_slice(keys);
        if redis_cli(redis, &args) == keys.len().to_string() {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "keys {keys:?} not back within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn readyz(port: u16) -> (u16, String) {
    http(port, "GET", "/readyz", &[], "")
}

/// Reads what `socket` gets for `for_how_long`, failing on any `participant_left`.
fn nobody_leaves(socket: &mut Socket, for_how_long: Duration, log: &LogFile) {
    socket.get_ref().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let until = Instant::now() + for_how_long;
    while Instant::now() < until {
        if let Ok(tungstenite::Message::Text(text)) = socket.read() {
            assert!(!text.contains("participant_left"), "{text}\n{}", log.read());
        }
    }
    socket.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

#[test]
fn redis_flushed_restarted_or_paused_mid_call_never_splits_the_room() {
    let mut redis = RedisServer::start();
    let (log_a, log_b) = (LogFile::new("cluster-redis-a"), LogFile::new("cluster-redis-b"));
    let _a = node(&redis, "node-a", 18140, SECRET, &log_a);
    let _b = node(&redis, "node-b", 18150, SECRET, &log_b);
    let mut alice = join_room(18140, "outage", "alice");
    read_until(&mut alice, "joined").expect("alice joins on A");
    let mut bob = join_room(18150, "outage", "bob");
    read_for(&mut bob, Duration::from_secs(15), "alice on B", |m| is_joined_by(m, "alice"));
    let keys = ["sfu:node:node-a", "sfu:node:node-b", "sfu:room:outage"];
    keys_back(&redis, &keys, Duration::from_secs(5));

    // Flushed: every key is written back within a beat or so.
    assert_eq!(redis_cli(&redis, &["FLUSHALL"]), "OK");
    let after_flush = keys_back(&redis, &keys, Duration::from_secs(5));
    eprintln!("keys back {after_flush:?} after FLUSHALL");

    // Restarted empty: the nodes reconnect and rebuild; a new join works and sees everyone.
    redis.restart_empty();
    let after_restart = keys_back(&redis, &keys, Duration::from_secs(8));
    eprintln!("keys back {after_restart:?} after a restart");
    let mut carol = join_room(18140, "outage", "carol");
    read_for(&mut carol, Duration::from_secs(10), "bob listed to carol", |m| is_joined_by(m, "bob"));

    // Paused: liveness stays, readiness says degraded, the room goes on across nodes.
    redis.pause();
    let paused = Instant::now();
    while !readyz(18140).1.contains("degraded") {
        assert!(paused.elapsed() < Duration::from_secs(5), "readyz never said degraded: {:?}", readyz(18140));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("readyz degraded {:?} after SIGSTOP", paused.elapsed());
    assert_eq!(readyz(18140).0, 200);
    assert_eq!(http(18140, "GET", "/healthz", &[], "").0, 200);
    let mut dave = join_room(18150, "outage", "dave");
    read_until(&mut dave, "joined").expect("dave joins on B while Redis is paused");
    read_for(&mut alice, Duration::from_secs(10), "dave on A", |m| is_joined_by(m, "dave"));
    nobody_leaves(&mut bob, Duration::from_secs(8).saturating_sub(paused.elapsed()), &log_b);
    redis.resume();
    let resumed = Instant::now();
    while !readyz(18140).1.contains("ready") {
        assert!(resumed.elapsed() < Duration::from_secs(8), "readyz never ready again: {:?}", readyz(18140));
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_pause = keys_back(&redis, &keys, Duration::from_secs(8));
    eprintln!("ready again {:?}, keys back {after_pause:?} after SIGCONT", resumed.elapsed());
    nobody_leaves(&mut bob, Duration::from_secs(3), &log_b);
}

/// Sends `join` with `redirects` on a socket to `port`.
fn join_redirected(port: u16, room: &str, identity: &str, redirects: u32) -> Socket {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut socket, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/rtc"), stream).unwrap();
    let token = support::signal::token(port, room, identity);
    let join = serde_json::json!({ "type": "join", "token": token, "redirects": redirects });
    socket.send(tungstenite::Message::text(join.to_string())).unwrap();
    socket
}

#[test]
fn a_full_node_sends_newcomers_to_another_and_a_draining_one_moves_its_sessions() {
    let redis = RedisServer::start();
    let (log_a, log_b) = (LogFile::new("cluster-redirect-a"), LogFile::new("cluster-redirect-b"));
    let mut cmd = sfu(18160);
    cmd.env("SFU_CLUSTER__REDIS_URL", redis.url())
        .env("SFU_CLUSTER__SECRET", SECRET)
        .env("SFU_CLUSTER__NODE_ID", "node-a")
        .env("SFU_CLUSTER__RELAY_ADDR", "127.0.0.1:18165")
        .env("SFU_CLUSTER__DRAIN_TIMEOUT_SECS", "1")
        .env("SFU_LIMITS__PARTICIPANTS_PER_NODE", "1");
    let (a, _) = start_until_listening(cmd, &log_a);
    let _b = node(&redis, "node-b", 18170, SECRET, &log_b);
    let mut alice = join_room(18160, "busy", "alice");
    read_until(&mut alice, "joined").expect("alice joins on A");

    // A is full: Bob is sent to B (once A has seen B in the registry: a beat or two).
    let deadline = Instant::now() + Duration::from_secs(10);
    let redirect = loop {
        let mut bob = join_room(18160, "busy", "bob");
        match read_next(&mut bob) {
            Ok(m) if m["type"] == "redirect" => {
                let close = read_until(&mut bob, "never").expect_err("closed after the redirect");
                assert_eq!(close.0, 4307, "{close:?}");
                break m;
            }
            Ok(m) => assert_eq!(m["type"], "error", "a full node without another refuses: {m}"),
            Err(close) => panic!("closed {close:?}"),
        }
        assert!(Instant::now() < deadline, "A never redirected:\n{}", log_a.read());
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(redirect["url"], "ws://127.0.0.1:18170/rtc");
    let mut bob = join_redirected(18170, "busy", "bob", 1);
    read_for(&mut bob, Duration::from_secs(10), "alice listed to bob on B", |m| is_joined_by(m, "alice"));
    // A join already sent on twice is not sent on again: A refuses it as full.
    let mut carol = join_redirected(18160, "busy", "carol", 2);
    let refused = read_until(&mut carol, "error").expect("an error, not a redirect");
    assert_eq!(refused["code"], "node_full", "{refused}");

    // WHIP at the full node: 307 to the same resource on B.
    let bearer = format!("Bearer {}", support::signal::token(18160, "busy", "dave"));
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/sdp")];
    let response = raw_http(18160, "POST", "/whip/busy", &headers, "v=0\r\n");
    assert!(response.starts_with("HTTP/1.1 307"), "{response}");
    assert!(response.to_ascii_lowercase().contains("location: http://127.0.0.1:18170/whip/busy"), "{response}");

    // SIGTERM: at the end of its drain A sends Alice to B.
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    assert_eq!(unsafe { libc::kill(a.0.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let moved = read_for(&mut alice, Duration::from_secs(10), "alice's redirect", |m| m["type"] == "redirect");
    assert_eq!(moved["url"], "ws://127.0.0.1:18170/rtc");
    let close = read_until(&mut alice, "never").expect_err("closed after the redirect");
    assert_eq!(close.0, 4307);
}
