//! A signaling client for the real binary on loopback: plain HTTP requests, dev tokens, and a
//! WebSocket that joins a room. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::{Message, WebSocket};

/// A plain HTTP/1.1 request on loopback: (status, body).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let response = raw_http(port, method, path, headers, body);
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The raw response to a plain HTTP/1.1 request on loopback (status line and headers included).
pub fn raw_http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

pub fn token(port: u16, room: &str, identity: &str) -> String {
    let (status, body) = http(port, "GET", &format!("/dev/token?room={room}&identity={identity}"), &[], "");
    assert_eq!(status, 200, "{body}");
    // The JSON line (were the body chunked, it would sit between the chunk sizes).
    let line = body.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON in {body:?}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

pub type Socket = WebSocket<TcpStream>;

/// A signaling socket that sent `join` for `identity` in `room`.
pub fn join_room(port: u16, room: &str, identity: &str) -> Socket {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut socket, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/rtc"), stream).unwrap();
    let join = serde_json::json!({ "type": "join", "token": token(port, room, identity) });
    socket.send(Message::text(join.to_string())).unwrap();
    socket
}

/// Reads until a message of type `kind` (returned), or the close frame (an error).
pub fn read_until(socket: &mut Socket, kind: &str) -> Result<serde_json::Value, (u16, String)> {
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                let message: serde_json::Value = serde_json::from_str(&text).unwrap();
                if message["type"] == kind {
                    return Ok(message);
                }
            }
            Ok(Message::Close(frame)) => {
                return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
            }
            Ok(_) => {}
            Err(e) => panic!("socket failed before {kind} or a close: {e}"),
        }
    }
}

/// The next text message, or the close frame (an error).
pub fn read_next(socket: &mut Socket) -> Result<serde_json::Value, (u16, String)> {
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => return Ok(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(frame)) => {
                return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
            }
            Ok(_) => {}
            Err(e) => panic!("socket failed: {e}"),
        }
    }
}
