//! What every simulated participant's signaling session shares, whichever server it speaks to:
//! the run's context and counters, the participant's identity and media worker, asking that
//! worker for an answer with a deadline, and starting a participant's session as a task.

use sfu_proto::LayerPreference;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::cli::ServerKind;
use crate::media::peer::PublishSpec;
use crate::media::{Command, WorkerHandle};
use crate::token::Minter;
use crate::{janus, signal};

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
    pub ws_url: String,
    pub minter: Minter,
    pub layer: LayerPreference,
    pub counters: SignalCounters,
    /// First few failure messages, for the report.
    pub failure_log: std::sync::Mutex<Vec<String>>,
}

impl SessionContext {
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

/// How a participant's session task ended.
#[derive(Clone, Copy, Debug)]
pub struct SessionEnd {
    pub id: u64,
    pub joined: bool,
    /// It ended on an error (or the server ended it), not because it was told to stop.
    pub failed: bool,
}

/// Starts participants' sessions, each on its own media worker (round-robin) and with its own
/// stop signal: the session leaves when that signal turns true or its sender is dropped.
pub struct Spawner {
    pub ctx: Arc<SessionContext>,
    pub workers: Vec<Arc<WorkerHandle>>,
    pub sessions: JoinSet<SessionEnd>,
    next_id: u64,
}

/// A started participant: its id and whether it has joined yet.
pub struct Started {
    pub id: u64,
    pub joined: Arc<AtomicBool>,
}

impl Spawner {
    pub fn new(ctx: Arc<SessionContext>, workers: Vec<Arc<WorkerHandle>>) -> Self {
        Self { ctx, workers, sessions: JoinSet::new(), next_id: 0 }
    }

    pub fn spawn(
        &mut self,
        room: String,
        identity: String,
        publish: Option<PublishSpec>,
        subscribe: bool,
        stop: watch::Receiver<bool>,
    ) -> Started {
        let id = self.next_id;
        self.next_id += 1;
        let worker = self.workers[id as usize % self.workers.len()].clone();
        let joined = Arc::new(AtomicBool::new(false));
        let p = Participant { id, room, identity, publish, subscribe, worker, joined: joined.clone() };
        self.sessions.spawn(run_participant(p, self.ctx.clone(), stop));
        Started { id, joined }
    }
}

/// Runs the session until `stop` turns true (then leaves) or the server ends it.
async fn run_participant(p: Participant, ctx: Arc<SessionContext>, stop: watch::Receiver<bool>) -> SessionEnd {
    ctx.counters.started.fetch_add(1, Ordering::Relaxed);
    let outcome = match ctx.server {
        ServerKind::Sfu => signal::session(&p, &ctx, stop).await,
        ServerKind::Janus => janus::session(&p, &ctx, stop).await,
    };
    let failed = outcome.is_err();
    if let Err(e) = outcome {
        ctx.note_failure(format!("{}: {e:#}", p.identity));
    }
    p.worker.send(Command::Close { id: p.publisher_conn() });
    p.worker.send(Command::Close { id: p.subscriber_conn() });
    SessionEnd { id: p.id, joined: p.joined.load(Ordering::Relaxed), failed }
}
