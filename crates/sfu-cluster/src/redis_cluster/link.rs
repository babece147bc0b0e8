//! The supervisor's connection to Redis: a `ConnectionManager` once one connected, and the
//! policy around it.
//!
//! - Connecting (at boot, and after the manager is given up) is the supervisor's own loop: one
//!   attempt at a time, each bounded by the connection timeout, 100 ms apart doubling to 2 s,
//!   without end. redis 0.32's manager cannot start its backoff below 1 s (its `factor`
//!   multiplies a fixed 1 s minimum) and its first connection either waits out every retry or
//!   fails, so its own retries are off: a Redis unreachable at boot must not hold up `start`.
//! - A dropped connection is the manager's: it reconnects in place (one attempt, again at the
//!   next command while that fails), and commands meanwhile fail or wait.
//! - A connection where only timeouts come back (the manager never notices a silent one: a host
//!   gone without a reset) is given up after [`TIMEOUTS_BEFORE_RECONNECT`] in a row, and a new
//!   manager connected. A paused Redis does this too; harmless (see docs/cluster.md, step 3).
//! - Failures are logged at most every [`LOG_EVERY`], so a wrong address is loud but not a flood.

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
/// Timeouts in a row after which the connection is replaced.
pub const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;
/// At most one error line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The manager's settings: our timeouts, and no retries of its own (see the module docs).
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_connection_timeout(CONNECTION_TIMEOUT)
        .set_number_of_retries(0)
}

enum State {
    /// Connected; `generation` tells its commands' outcomes from an older manager's.
    Up {
        manager: ConnectionManager,
        generation: u64,
    },
    /// The next attempt is due at this time.
    Waiting(Instant),
    Connecting(JoinHandle<RedisResult<ConnectionManager>>),
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
            State::Up { manager, generation } => Some((manager.clone(), *generation)),
            _ => None,
        }
    }

    /// Waits for the next change: an attempt falling due (then started) or ending. Cancel-safe:
    /// an attempt runs as its own task and is picked up by the next call.
    pub async fn progress(&mut self) {
        match &mut self.state {
            State::Up { .. } => std::future::pending().await,
            State::Waiting(at) => {
                tokio::time::sleep_until((*at).into()).await;
                let connect = ConnectionManager::new_with_config(self.client.clone(), manager_config());
                // Bounded twice: the client's connection timeout covers its handshake, this
                // covers anything it might not.
                let bounded = async move {
                    tokio::time::timeout(CONNECTION_TIMEOUT * 2, connect)
                        .await
                        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
                };
                self.state = State::Connecting(tokio::spawn(bounded));
            }
            State::Connecting(attempt) => {
                let result = attempt.await;
                let now = Instant::now();
                match result {
                    Ok(Ok(manager)) => {
                        self.generation += 1;
                        self.state = State::Up { manager, generation: self.generation };
                        self.backoff = BACKOFF_MIN;
                        self.timeouts_in_a_row = 0;
                        self.last_log = None;
                        tracing::info!(redis = %self.addr(), "cluster: connected to Redis");
                    }
                    Ok(Err(e)) => self.retry_later(now, &e.to_string()),
                    Err(e) => self.retry_later(now, &format!("connection attempt ended: {e}")),
                }
            }
        }
    }

    fn retry_later(&mut self, now: Instant, why: &str) {
        self.state = State::Waiting(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.log(now, &format!("cannot connect: {why}"));
    }

    /// A command sent on generation `generation` ended: `None` if it succeeded.
    pub fn command_ended(&mut self, generation: Option<u64>, failure: Option<&Failure>, now: Instant) {
        let current = matches!(self.state, State::Up { generation: g, .. } if Some(g) == generation);
        let Some(failure) = failure else {
            if current {
                self.timeouts_in_a_row = 0;
            }
            return;
        };
        self.log(now, &format!("command failed ({}): {}", failure.kind.label(), failure.detail));
        if !current {
            return;
        }
        if failure.kind != FailureKind::Timeout {
            self.timeouts_in_a_row = 0;
            return;
        }
        self.timeouts_in_a_row += 1;
        if self.timeouts_in_a_row >= TIMEOUTS_BEFORE_RECONNECT {
            tracing::warn!(redis = %self.addr(), "cluster: {} Redis timeouts in a row; connecting anew", self.timeouts_in_a_row);
            self.timeouts_in_a_row = 0;
            self.backoff = BACKOFF_MIN;
            self.state = State::Waiting(now);
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
        if let State::Connecting(attempt) = &self.state {
            attempt.abort();
        }
    }
}
