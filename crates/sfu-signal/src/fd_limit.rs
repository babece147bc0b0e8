//! The process's open-file limit. Every HTTP connection and WebSocket is a descriptor, and the
//! soft limit a shell or service manager hands out (often 1024) is far below what the kernel
//! allows the process (the hard limit): raised, the server can hold as many connections as it
//! was given descriptors for.

fn get() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// Raises the soft open-file limit to the hard limit and logs both; returns the soft limit now
/// in force. A failure is logged and leaves the limit as it was: the server still runs, with
/// fewer connections.
pub fn raise() -> Option<u64> {
    let limit = match get() {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let (was, hard) = (limit.rlim_cur, limit.rlim_max);
    let mut soft = was;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct it is given, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            soft = hard;
        } else {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, soft = was, hard, "cannot raise the open-file soft limit to the hard limit");
        }
    }
    tracing::info!(was, soft, hard, "open-file limit (RLIMIT_NOFILE)");
    Some(soft)
}
