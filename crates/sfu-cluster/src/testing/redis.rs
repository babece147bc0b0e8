//! FakeRedis: the four scripts' Rust mirrors (beside their Lua in `membership::scripts`) run on
//! an in-memory keyspace, with expiries judged by a [`FakeClock`]. It can be flushed, paused
//! (commands wait, and run when it resumes, as a stopped process's socket buffers them) and
//! cut off from any node (that node's commands never arrive).

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::{FakeClock, Keyspace};
use crate::NodeId;
use crate::membership::{LeaseMember, Script, ScriptCall, ScriptValue, scripts};

/// A script call as it reaches Redis: who sent it, and the sender's tag to match the answer.
#[derive(Clone, Debug)]
pub struct Job {
    /// The sending incarnation (invariant 2 holds writes to it).
    pub from: LeaseMember,
    /// The sender's own reference.
    pub tag: u64,
    /// The call.
    pub call: ScriptCall,
}

/// What became of a submitted job.
#[derive(Debug)]
pub enum Submitted {
    /// It ran; here is its answer.
    Ran(ScriptValue),
    /// Redis is paused: it waits for [`FakeRedis::resume`].
    Queued,
    /// The sender is cut off: it never arrived.
    Lost,
}

/// An in-memory Redis for the membership scripts.
pub struct FakeRedis {
    clock: FakeClock,
    keyspace: Keyspace,
    paused_until: Option<Instant>,
    queue: VecDeque<Job>,
    cut: BTreeSet<NodeId>,
}

impl FakeRedis {
    /// An empty Redis reading `clock`.
    pub fn new(clock: FakeClock) -> Self {
        Self { clock, keyspace: Keyspace::default(), paused_until: None, queue: VecDeque::new(), cut: BTreeSet::new() }
    }

    /// Its clock.
    pub fn clock(&self) -> FakeClock {
        self.clock
    }

    /// The data, for checks.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// A job arriving at `at`.
    pub fn submit(&mut self, job: Job, at: Instant) -> Submitted {
        if self.cut.contains(&job.from.node) {
            return Submitted::Lost;
        }
        if self.paused_until.is_some_and(|until| at < until) {
            self.queue.push_back(job);
            return Submitted::Queued;
        }
        Submitted::Ran(self.run(&job, at))
    }

    /// Runs a script now, whatever the pause or cuts.
    pub fn run(&mut self, job: &Job, at: Instant) -> ScriptValue {
        self.keyspace.begin(job.from.clone(), self.clock.redis_ms(at));
        let ScriptCall { script, keys, args } = &job.call;
        let ks = &mut self.keyspace;
        match script {
            Script::Beat => scripts::beat::run(ks, keys, args),
            Script::Join => scripts::join::run(ks, keys, args),
            Script::Leave => scripts::leave::run(ks, keys, args),
            Script::Unregister => scripts::unregister::run(ks, keys, args),
        }
    }

    /// Stops answering until `until` (`SIGSTOP`, then `SIGCONT` at `until`).
    pub fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
    }

    /// When a pause ends, if paused.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// At the end of a pause: the jobs that waited, in arrival order, for the caller to
    /// [`Self::run`] one by one (so it can look at Redis after each).
    pub fn resume(&mut self, at: Instant) -> Vec<Job> {
        if self.paused_until.is_none_or(|until| at < until) {
            return Vec::new();
        }
        self.paused_until = None;
        self.queue.drain(..).collect()
    }

    /// Loses every key, as `FLUSHALL` or a restart without persistence. A restart also ends a
    /// pause; the jobs that waited died with the old process.
    pub fn flush(&mut self) {
        self.keyspace.flush();
        self.paused_until = None;
        self.queue.clear();
    }

    /// Cuts `node` off (its jobs are lost), or reconnects it.
    pub fn cut(&mut self, node: &NodeId, off: bool) {
        if off {
            self.cut.insert(node.clone());
        } else {
            self.cut.remove(node);
        }
    }

    /// Whether `node` is cut off.
    pub fn is_cut(&self, node: &NodeId) -> bool {
        self.cut.contains(node)
    }
}
