//! The HTTP front's defences, against a real server on loopback: a client that never finishes its
//! request head is disconnected after `http.header_read_timeout_secs`, and connections past
//! `http.max_connections` or `http.max_connections_per_ip` are answered 503 with a JSON body and
//! closed, until an open one (a WebSocket too) closes.
//!
//! Bounds are generous (the machine may be busy): they catch a server that never acts, not a
//! slow one.

use futures_util::{SinkExt, StreamExt};
use sfu_signal::Server;
use sfu_signal::auth::{Grants, TokenAuthority, unix_time};
use sfu_signal::config::Config;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// How long any single step may take before the test gives up.
const BOUND: Duration = Duration::from_secs(20);

/// Dev config on free ports with one shard; `tweak` sets the keys under test.
fn config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::for_dev();
    c.http_port = 0;
    c.rtc.udp_port_start = 0;
    // Tests here start servers side by side: no fixed ICE-TCP port.
    c.rtc.tcp_port = 0;
    c.rtc.shards = 1;
    tweak(&mut c);
    c
}

/// Starts a server that runs until the test's runtime ends; returns its address.
async fn start(config: Config) -> SocketAddr {
    let server = Server::bind(config).await.expect("server starts");
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

/// An HTTP/1.1 response as read off the wire.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// `GET path` on a fresh connection (`Connection: close`), read to the end.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(BOUND, tcp.read_to_end(&mut raw)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or(std::io::ErrorKind::InvalidData)?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(std::io::ErrorKind::InvalidData)?;
    Ok(Reply { status, head: head.to_owned(), body: body.to_owned() })
}

/// Asserts `reply` is the 503 a connection past a cap gets, with this error code.
fn assert_refused(reply: &Reply, code: &str) {
    assert_eq!(reply.status, 503, "{}\r\n\r\n{}", reply.head, reply.body);
    assert!(reply.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", reply.head);
    assert!(reply.head.to_ascii_lowercase().contains("connection: close"), "{}", reply.head);
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON body");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

/// Retries `GET /healthz` until it answers 200 (a slot frees once the server sees a close).
async fn healthz_recovers(addr: SocketAddr) {
    let deadline = Instant::now() + BOUND;
    loop {
        match get(addr, "/healthz").await {
            Ok(r) if r.status == 200 => return assert_eq!(r.body, "ok"),
            other => {
                assert!(Instant::now() < deadline, "/healthz still refused: {:?}", other.map(|r| (r.status, r.body)))
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `series` (name and labels, as written) at `/metrics`.
async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let metrics = get(addr, "/metrics").await.unwrap();
    assert_eq!(metrics.status, 200);
    let line = metrics
        .body
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} at /metrics:\n{}", metrics.body));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Opens a TCP connection the server has surely accepted: the accept loop takes connections in
/// order, so one that got an answer after this one was opened proves this one was taken first.
async fn idle_connection(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; false if it is still open after `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, read_all).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_head_is_disconnected_after_the_header_timeout() {
    let addr = start(config(|c| c.http.header_read_timeout_secs = 1)).await;

    // A request line and one header, never the blank line that ends the head.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // And a connection that sends nothing at all.
    let mut silent = TcpStream::connect(addr).await.unwrap();

    // Complete requests are served meanwhile.
    let ok = get(addr, "/healthz").await.unwrap();
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));

    assert!(closed_within(&mut partial, BOUND).await, "partial request head still open after {BOUND:?}");
    assert!(closed_within(&mut silent, BOUND).await, "silent connection still open after {BOUND:?}");
    assert!(metric(addr, "sfu_http_header_timeouts_total").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_get_503_until_one_closes() {
    let addr = start(config(|c| {
        c.http.max_connections_per_ip = 3;
        // The idle connections below must outlive any pause of a busy machine.
        c.http.header_read_timeout_secs = 600;
        // Loopback is exempt by default (a reverse proxy or load harness on the same host).
        c.http.per_ip_exempt_loopback = false;
    }))
    .await;

    let first = idle_connection(addr).await;
    let _second = idle_connection(addr).await;
    let _third = idle_connection(addr).await;
    let refused = get(addr, "/healthz").await.unwrap();
    assert_refused(&refused, "too_many_connections_from_address");

    drop(first);
    healthz_recovers(addr).await;

    // The slot the /healthz request took is free again; the counter saw the refusal.
    assert!(metric(addr, "sfu_http_connections_rejected_total{reason=\"per_ip\"}").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_websocket_holds_its_slot_until_it_closes() {
    let config = config(|c| {
        c.http.max_connections = 2;
        c.http.header_read_timeout_secs = 600;
    });
    let token = TokenAuthority::from_config(&config.auth).issue(
        "caps",
        "alice",
        Grants::participant(),
        Duration::from_secs(600),
        unix_time(SystemTime::now()),
    );
    let addr = start(config).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, response) =
        tokio_tungstenite::client_async(format!("ws://{addr}/rtc"), tcp).await.expect("WebSocket upgrade");
    assert_eq!(response.status(), 101);
    // Joined, so the session outlives the join timeout however slow the machine is.
    ws.send(Message::text(serde_json::json!({ "type": "join", "token": token }).to_string())).await.unwrap();
    let welcome = tokio::time::timeout(BOUND, ws.next()).await.expect("a reply to join").unwrap().unwrap();
    assert!(welcome.to_text().unwrap().contains("\"joined\""), "{welcome:?}");

    let _idle = idle_connection(addr).await;
    let refused = get(addr, "/healthz").await.unwrap();
    assert_refused(&refused, "too_many_connections");

    ws.close(None).await.unwrap();
    // Read the server's close frame, so the socket ends cleanly.
    let _ = tokio::time::timeout(BOUND, async { while ws.next().await.is_some() {} }).await;
    drop(ws);
    healthz_recovers(addr).await;
    assert!(metric(addr, "sfu_http_connections_rejected_total{reason=\"global\"}").await >= 1.0);
}
