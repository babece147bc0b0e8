//! Starting the server raises the process's open-file soft limit to its hard limit: each HTTP
//! connection is a descriptor, and a soft limit left at the usual 1024 let a thousand idle
//! connections lock everyone out. (Its own test binary: it changes a limit of the whole process.)

use sfu_signal::Server;
use sfu_signal::config::Config;

fn rlimit() -> libc::rlimit {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit
}

/// (soft, hard)
fn nofile() -> (u64, u64) {
    let limit = rlimit();
    (limit.rlim_cur, limit.rlim_max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_raises_the_open_file_soft_limit_to_the_hard_limit() {
    // Start from a soft limit below the hard one, as a login shell usually sets it.
    let mut low = rlimit();
    low.rlim_cur = low.rlim_max.min(256);
    // SAFETY: setrlimit reads the struct we pass; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let (soft, hard) = nofile();
    assert_eq!(soft, hard.min(256));

    let mut config = Config::for_dev();
    config.http_port = 0;
    config.rtc.udp_port_start = 0;
    config.rtc.tcp_port = 0;
    config.rtc.shards = 1;
    let _server = Server::bind(config).await.expect("server starts");
    assert_eq!(nofile(), (hard, hard), "soft limit not raised to the hard limit");
}
