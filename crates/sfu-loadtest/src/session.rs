//! What every simulated participant's signaling session shares, whichever server it speaks to:
//! the run's context and counters, the participant's identity and media worker, and asking that
//! worker for an answer with a deadline. Starting sessions is `spawner.rs`.

use sfu_proto::LayerPreference;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

use crate::cli::ServerKind;
use crate::media::peer::PublishSpec;
use crate::media::{Command, WorkerHandle};
use crate::token::Minter;

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Signaling counters shared by every session.
#[derive(Default)]
pub struct SignalCounters {
    pub started: AtomicU64,
    pub ws_connected: AtomicU64,
    pub joined: AtomicU64,
    pub offers_answered: AtomicU64,
    pub publisher_answers: AtomicU64,
    pub server_errors: AtomicU64,
    pub failures: AtomicU64,
    pub closed_by_server: AtomicU64,
}

pub struct SessionContext {
    pub server: ServerKind,
    /// The signaling URL of each node (one, or the cluster's nodes in `--url` order).
    pub ws_urls: Vec<String>,
    pub minter: Minter,
    pub layer: LayerPreference,
    pub counters: SignalCounters,
    /// First few failure messages, for the report.
    pub failure_log: std::sync::Mutex<Vec<String>>,
}

impl SessionContext {
    /// The signaling URL of `node`.
    pub(crate) fn ws_url(&self, node: usize) -> &str {
        &self.ws_urls[node.min(self.ws_urls.len().saturating_sub(1))]
    }

    pub(crate) fn note_failure(&self, what: String) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut log) = self.failure_log.lock()
            && log.len() < 20
        {
            log.push(what);
        }
    }
}

pub struct Participant {
    /// Unique per run; the publisher connection is `2*id`, the subscriber connection `2*id+1`.
    pub id: u64,
    pub room: String,
    pub identity: String,
    /// Which node (index into `SessionContext::ws_urls`) it joins.
    pub node: usize,
    pub publish: Option<PublishSpec>,
    pub subscribe: bool,
    pub worker: Arc<WorkerHandle>,
    /// Set once the server has let this participant in.
    pub joined: Arc<AtomicBool>,
}

impl Participant {
    pub fn publisher_conn(&self) -> u64 {
        self.id * 2
    }
    pub fn subscriber_conn(&self) -> u64 {
        self.id * 2 + 1
    }
}

pub(crate) async fn ask<T>(
    worker: &WorkerHandle,
    make: impl FnOnce(oneshot::Sender<anyhow::Result<T>>) -> Command,
) -> anyhow::Result<T> {
    let (tx, rx) = oneshot::channel();
    worker.send(make(tx));
    tokio::time::timeout(REPLY_TIMEOUT, rx).await.map_err(|_| anyhow::anyhow!("media worker did not answer"))??
}
