//! The supervisor's connection to Redis: a `ConnectionManager` once one connected, and the
//! policy around it.
//!
//! - Connecting at boot is the supervisor's own loop: one attempt at a time, each bounded by the
//!   connection timeout, 100 ms apart doubling to 2 s, without end. redis 0.32's manager cannot
//!   start its backoff below 1 s (its `factor` multiplies a fixed 1 s minimum), and its first
//!   connection either waits out every retry or fails; so its own retries are off, and a Redis
//!   unreachable at boot does not hold up `start`.
//! - A dropped connection is the manager's: it reconnects in place (one attempt at once, another
//!   with each command while that fails, so at least every beat); commands meanwhile fail.
//! - A connection where only timeouts come back is to a Redis that is paused or overloaded, or
//!   silently dead (a host gone without a reset, a NAT entry dropped), which the manager never
//!   notices. After [`TIMEOUTS_IN_A_ROW`] a fresh connection is tried beside it (connect, then
//!   `PING`) and taken only if it answers. A paused Redis answers neither, so its connection is
//!   kept: the manager recovers from a pause by itself (late replies are matched to their
//!   commands and dropped), and the commands waiting in Redis's socket are answered the moment
//!   it runs again.
//! - Failures are logged at most every [`LOG_EVERY`], so a wrong address is loud but no flood.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};
use tokio::task::JoinHandle;

use super::exec::{Failure, FailureKind};

/// A command without an answer this long has failed (the manager's own timeout).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A connection attempt (TCP and the client's handshake) that takes longer has failed.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// The first wait between connection attempts; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Timeouts in a row after which a fresh connection is tried beside the current one.
pub const TIMEOUTS_IN_A_ROW: u32 = 3;
/// At most one error line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The manager's settings: our timeouts, and no retries of its own (see the module docs).
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_connection_timeout(CONNECTION_TIMEOUT)
        .set_number_of_retries(0)
}

type Attempt = JoinHandle<RedisResult<ConnectionManager>>;

enum State {
    /// Connected. `generation` tells its commands' outcomes from an older manager's; `probe` is
    /// a fresh connection being tried because this one only timed out of late.
    Up {
        manager: ConnectionManager,
        generation: u64,
        probe: Option<Attempt>,
    },
    /// The next attempt is due at this time.
    Waiting(Instant),
    Connecting(Attempt),
}

pub(super) struct Link {
    client: Client,
    state: State,
    generation: u64,
    backoff: Duration,
    timeouts_in_a_row: u32,
    last_log: Option<Instant>,
    /// Failures not logged since the last line.
    unlogged: u64,
}

impl Link {
    /// Not connected; the first attempt is due at once.
    pub fn new(client: Client, now: Instant) -> Self {
        Self {
            client,
            state: State::Waiting(now),
            generation: 0,
            backoff: BACKOFF_MIN,
            timeouts_in_a_row: 0,
            last_log: None,
            unlogged: 0,
        }
    }

    /// Where Redis is, for log lines (no password: the URL may hold one).
    fn addr(&self) -> String {
        self.client.get_connection_info().addr.to_string()
    }

    /// The manager to send a command with, and its generation; `None` while not connected.
    pub fn manager(&self) -> Option<(ConnectionManager, u64)> {
        match &self.state {
            State::Up { manager, generation, .. } => Some((manager.clone(), *generation)),
            _ => None,
        }
    }

    /// Waits for the next change: an attempt falling due (then started) or ending. Cancel-safe:
    /// attempts run as their own tasks and are picked up by the next call.
    pub async fn progress(&mut self) {
        match &mut self.state {
            State::Up { probe: None, .. } => std::future::pending().await,
            State::Up { probe: Some(attempt), .. } => {
                let result = attempt.await;
                if let Ok(Ok(manager)) = result {
                    tracing::warn!(redis = %self.addr(), "cluster: Redis connection only timed out; moved to a new one");
                    self.connected(manager);
                } else {
                    // Redis answers no new connection either (paused, overloaded): the current
                    // one is as good as any, and recovers when Redis does.
                    if let State::Up { probe, .. } = &mut self.state {
                        *probe = None;
                    }
                    self.log(Instant::now(), "answers no new connection either");
                }
            }
            State::Waiting(at) => {
                tokio::time::sleep_until((*at).into()).await;
                self.state = State::Connecting(self.attempt(false));
            }
            State::Connecting(attempt) => {
                let result = attempt.await;
                match result {
                    Ok(Ok(manager)) => {
                        self.connected(manager);
                        tracing::info!(redis = %self.addr(), "cluster: connected to Redis");
                    }
                    Ok(Err(e)) => self.retry_later(&e.to_string()),
                    Err(e) => self.retry_later(&format!("connection attempt ended: {e}")),
                }
            }
        }
    }

    /// A new manager, in its own task. `probe`: it must also answer a `PING`.
    fn attempt(&self, probe: bool) -> Attempt {
        let connect = ConnectionManager::new_with_config(self.client.clone(), manager_config());
        let attempt = async move {
            let mut manager = connect.await?;
            if probe {
                redis::cmd("PING").query_async::<()>(&mut manager).await?;
            }
            Ok(manager)
        };
        // Bounded here too: the client's timeouts cover its handshake and the PING, this
        // covers anything they might not.
        let bound = CONNECTION_TIMEOUT * 2 + RESPONSE_TIMEOUT;
        tokio::spawn(async move {
            match tokio::time::timeout(bound, attempt).await {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        })
    }

    fn connected(&mut self, manager: ConnectionManager) {
        self.generation += 1;
        self.state = State::Up { manager, generation: self.generation, probe: None };
        self.backoff = BACKOFF_MIN;
        self.timeouts_in_a_row = 0;
        self.last_log = None;
    }

    fn retry_later(&mut self, why: &str) {
        let now = Instant::now();
        self.state = State::Waiting(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.log(now, &format!("cannot connect: {why}"));
    }

    /// A command sent on generation `generation` ended: `failure` is `None` if it succeeded.
    pub fn command_ended(&mut self, generation: Option<u64>, failure: Option<&Failure>, now: Instant) {
        if let Some(failure) = failure {
            self.log(now, &format!("command failed ({}): {}", failure.kind.label(), failure.detail));
        }
        let current = matches!(self.state, State::Up { generation: g, .. } if Some(g) == generation);
        if !current {
            return;
        }
        if failure.is_none_or(|f| f.kind != FailureKind::Timeout) {
            self.timeouts_in_a_row = 0;
            return;
        }
        self.timeouts_in_a_row += 1;
        if self.timeouts_in_a_row >= TIMEOUTS_IN_A_ROW {
            self.timeouts_in_a_row = 0;
            if matches!(self.state, State::Up { probe: None, .. }) {
                let fresh = self.attempt(true);
                if let State::Up { probe, .. } = &mut self.state {
                    *probe = Some(fresh);
                }
            }
        }
    }

    /// An error line, unless one was written less than [`LOG_EVERY`] ago.
    fn log(&mut self, now: Instant, what: &str) {
        if self.last_log.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            self.unlogged += 1;
            return;
        }
        let suppressed = std::mem::take(&mut self.unlogged);
        tracing::error!(redis = %self.addr(), suppressed, "cluster: Redis {what} (rooms go on without it)");
        self.last_log = Some(now);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let State::Connecting(attempt) | State::Up { probe: Some(attempt), .. } = &self.state {
            attempt.abort();
        }
    }
}
