//! The dialer of one listed peer (this node has the lower id): connects, runs the handshake and
//! the link, and after the link ends or an attempt fails waits and starts again, until the
//! supervisor aborts it (the peer unlisted, or listed with another boot or address).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::conn::{self, Failed};
use super::ctx::Ctx;
use super::handshake::Handshake;
use super::link::{self, LinkEnd};
use super::{HANDSHAKE_TIMEOUT, Listed, NodeId};

/// The first wait after a lost link or a failed connection attempt.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between plain attempts: a restarted peer is found within 2 s.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// The first wait after an authentication failure. Retrying a wrong secret fast only fills logs.
const FIRST_AUTH_RETRY: Duration = Duration::from_secs(2);
/// The longest wait after authentication failures.
const MAX_AUTH_RETRY: Duration = Duration::from_secs(30);

/// How long to wait before the next attempt, by what happened to the last ones.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
    next_auth: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY, next_auth: FIRST_AUTH_RETRY }
    }
}

impl Backoff {
    /// A link was up and ended: start over quickly.
    pub(super) fn after_link(&mut self) -> Duration {
        *self = Backoff::default();
        self.after_failure()
    }

    /// No connection, or a handshake that failed for no fault of authentication.
    pub(super) fn after_failure(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(MAX_RETRY);
        wait
    }

    /// An authentication failure.
    pub(super) fn after_auth_failure(&mut self) -> Duration {
        let wait = self.next_auth;
        self.next_auth = (wait * 2).min(MAX_AUTH_RETRY);
        wait
    }
}

pub(super) async fn run(ctx: Arc<Ctx>, node: NodeId, listed: Listed) {
    let label: Arc<str> = node.as_str().into();
    let mut backoff = Backoff::default();
    loop {
        let wait = attempt(&ctx, &node, &listed, &label, &mut backoff).await;
        if ctx.reports.is_closed() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// One connection, from connect to the end of its link; returns the wait before the next.
async fn attempt(ctx: &Ctx, node: &NodeId, listed: &Listed, label: &Arc<str>, backoff: &mut Backoff) -> Duration {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut stream = match timeout_at(deadline, TcpStream::connect(listed.addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(peer = %node.escaped(), addr = %listed.addr, error = %e, "relay connect failed");
            return backoff.after_failure();
        }
        Err(_) => return backoff.after_failure(),
    };
    // Control frames are small and latency matters more than packing them.
    let _ = stream.set_nodelay(true);
    let handshake =
        Handshake::dialer(ctx.local.clone(), &ctx.secret, rand::random(), (node.clone(), listed.boot.clone()));
    let failed = match conn::handshake(&mut stream, handshake, deadline).await {
        Ok((established, decoder)) => {
            match link::run(ctx, stream, decoder, established, label.clone(), Some(deadline)).await {
                LinkEnd::Down(_) => return backoff.after_link(),
                LinkEnd::NeverUp(reason) => Failed { reason, node: Some(node.clone()) },
            }
        }
        Err(failed) => failed,
    };
    let counts = failed.reason.counts();
    ctx.auth_failed(listed.addr, failed, Some(label.clone()));
    if counts { backoff.after_auth_failure() } else { backoff.after_failure() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn waits_double_up_to_their_caps_and_a_link_starts_over() {
        let mut b = Backoff::default();
        let plain: Vec<u128> = (0..6).map(|_| ms(b.after_failure())).collect();
        assert_eq!(plain, [200, 400, 800, 1600, 2000, 2000]);
        let auth: Vec<u128> = (0..6).map(|_| ms(b.after_auth_failure())).collect();
        assert_eq!(auth, [2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(ms(b.after_link()), 200);
        assert_eq!(ms(b.after_auth_failure()), 2000);
        assert_eq!(ms(b.after_failure()), 400);
    }
}
