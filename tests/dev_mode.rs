//! The `sfu` binary's start-up safety: dev mode is not implied on an address other machines can
//! reach, asking for it explicitly starts the server with a warning, and logs written to a file
//! carry no terminal escape codes.
//!
//! Each test runs the built binary with its own high ports (17986-17999) and no inherited `SFU_*`
//! settings; nothing is sent to the server, which only binds.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `sfu` command with a clean `SFU_*` environment, the given HTTP port and one shard.
fn sfu(http_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfu"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().to_ascii_uppercase().starts_with("SFU_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("SFU_HTTP_PORT", http_port.to_string())
        .env("SFU_RTC__UDP_PORT_START", (http_port + 2).to_string())
        .env("SFU_RTC__SHARDS", "1")
        .env("SFU_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Kills the child on drop, so a failing assertion leaves no server behind.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file in the temp dir for a child's stderr, removed on drop.
struct LogFile(PathBuf);
impl LogFile {
    fn new(name: &str) -> Self {
        LogFile(std::env::temp_dir().join(format!("sfu-dev-mode-test-{}-{name}.log", std::process::id())))
    }
    fn read(&self) -> String {
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
fn start_until_listening(mut cmd: Command, log: &LogFile) -> (Running, String) {
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

#[test]
fn implied_dev_mode_on_a_reachable_address_is_refused() {
    let mut child = Running(
        sfu(17990).args(["--bind", "0.0.0.0", "--announce", "127.0.0.1"]).stderr(Stdio::piped()).spawn().unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "sfu kept running with implied dev mode on 0.0.0.0");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("SFU_DEV=true") && stderr.contains("auth.api_key"), "{stderr}");
    assert!(!stderr.contains("signaling listening"), "{stderr}");
}

#[test]
fn explicit_dev_mode_on_a_reachable_address_starts_with_a_warning() {
    let log = LogFile::new("explicit");
    let mut cmd = sfu(17993);
    cmd.args(["--bind", "0.0.0.0", "--announce", "127.0.0.1"]).env("SFU_DEV", "true");
    let (_server, text) = start_until_listening(cmd, &log);
    assert!(text.contains("DEV MODE ON A NON-LOOPBACK ADDRESS (0.0.0.0)"), "{text}");
}

#[test]
fn implied_dev_mode_on_loopback_starts_as_before() {
    let log = LogFile::new("loopback");
    let (_server, text) = start_until_listening(sfu(17997), &log);
    assert!(text.contains("DEV MODE") && !text.contains("NON-LOOPBACK"), "{text}");
}

#[test]
fn logs_to_a_file_carry_no_escape_codes() {
    let log = LogFile::new("ansi");
    let file = std::fs::File::create(&log.0).unwrap();
    // Stderr alone, where the logs go; stdout is for command output.
    let mut server = Running(sfu(17986).stdout(Stdio::null()).stderr(file).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let bytes = loop {
        let bytes = std::fs::read(&log.0).unwrap_or_default();
        if String::from_utf8_lossy(&bytes).contains("signaling listening") {
            break bytes;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("sfu exited ({status}) before listening:\n{}", String::from_utf8_lossy(&bytes));
        }
        assert!(Instant::now() < deadline, "sfu did not log on stderr that it listens within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("DEV MODE") && text.contains(" INFO "), "{text}");
    assert!(!bytes.contains(&0x1b), "ESC bytes in a log written to a file:\n{text:?}");
}
