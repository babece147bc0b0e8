//! A real `redis-server` for tests: a child process on a free loopback port, without
//! persistence, killed on drop. It can be paused (`SIGSTOP`) and resumed, and restarted empty on
//! the same port, as an operator or a crash would.
//!
//! Redis tests must not pass without Redis: if `redis-server` is missing, [`RedisServer::start`]
//! panics and says how to install it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `redis-server` child process.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (for a test that first shows the port closed).
    pub fn start_on(port: u16) -> Self {
        let server = Self { child: spawn(port), port };
        server.wait_ready();
        server
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `SIGSTOP`: the process stops; connections stay open and commands wait in the socket.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// `SIGCONT`: the process runs on and answers what waited.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// `SIGKILL` and a new empty server on the same port.
    pub fn restart_empty(&mut self) {
        self.stop();
        self.child = spawn(self.port);
        self.wait_ready();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {} failed", self.child.id());
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING within {READY_WITHIN:?}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(port: u16) -> Child {
    let dir = std::env::temp_dir();
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed, so the Redis tests cannot run: `apt-get install redis-server` \
             (scripts/test installs it)"
        ),
        Err(e) => panic!("cannot start redis-server: {e}"),
    }
}

/// A port nobody listens on at the moment.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound").port()
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}
