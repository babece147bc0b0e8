//! Running the built `sfu` binary in a test: a clean `SFU_*` environment, its own ports, its log
//! in a file, and no server left behind when an assertion fails.

pub mod signal;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `sfu` command with a clean `SFU_*` environment, the given HTTP port, ICE-TCP on the next
/// port, UDP on the one after, and one shard.
pub fn sfu(http_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfu"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().to_ascii_uppercase().starts_with("SFU_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("SFU_HTTP_PORT", http_port.to_string())
        .env("SFU_RTC__TCP_PORT", (http_port + 1).to_string())
        .env("SFU_RTC__UDP_PORT_START", (http_port + 2).to_string())
        .env("SFU_RTC__SHARDS", "1")
        .env("SFU_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Kills the child on drop, so a failing assertion leaves no server behind.
pub struct Running(pub Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file in the temp dir for a child's stderr, removed on drop.
pub struct LogFile(pub PathBuf);
impl LogFile {
    pub fn new(name: &str) -> Self {
        LogFile(std::env::temp_dir().join(format!("sfu-test-{}-{name}.log", std::process::id())))
    }
    pub fn read(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.0).unwrap_or_default()).into_owned()
    }
}
impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts `cmd` with stdout and stderr to `log` and waits (at most 60 s: the machine may be busy) until the
/// log says the server listens. Returns the running server and its log so far.
pub fn start_until_listening(mut cmd: Command, log: &LogFile) -> (Running, String) {
    let file = std::fs::File::create(&log.0).unwrap();
    let mut child = Running(cmd.stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = log.read();
        if text.contains("signaling listening") {
            return (child, text);
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("sfu exited ({status}) before listening:\n{text}");
        }
        assert!(Instant::now() < deadline, "sfu did not log that it listens within 60 s:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
