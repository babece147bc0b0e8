//! Starting participants' sessions as tasks, each with the server's own session code
//! (`signal.rs` for ours, `janus.rs` for Janus) on a media worker of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::ServerKind;
use crate::media::peer::PublishSpec;
use crate::media::{Command, WorkerHandle};
use crate::session::{Participant, SessionContext};
use crate::{janus, signal};

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
    /// The node of every participant started, by id.
    pub placement: Vec<usize>,
    next_id: u64,
}

/// A started participant: its id and whether it has joined yet.
pub struct Started {
    pub id: u64,
    pub joined: Arc<AtomicBool>,
}

impl Spawner {
    pub fn new(ctx: Arc<SessionContext>, workers: Vec<Arc<WorkerHandle>>) -> Self {
        Self { ctx, workers, sessions: JoinSet::new(), placement: Vec::new(), next_id: 0 }
    }

    pub fn spawn(
        &mut self,
        node: usize,
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
        self.placement.push(node);
        let p = Participant { id, room, identity, node, publish, subscribe, worker, joined: joined.clone() };
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
