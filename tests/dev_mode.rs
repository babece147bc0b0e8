//! The `sfu` binary's start-up safety: dev mode is not implied on an address other machines can
//! reach, asking for it explicitly starts the server with a warning, and logs written to a file
//! carry no terminal escape codes.
//!
//! Each test runs the built binary with its own high ports (17986-17999) and no inherited `SFU_*`
//! settings; nothing is sent to the server, which only binds.

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{LogFile, Running, sfu, start_until_listening};

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
