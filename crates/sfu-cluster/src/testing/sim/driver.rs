//! The Sim's event loop: commands travel to Redis and back with a fixed latency, fail at the
//! supervisor's response timeout, wait in a paused Redis, and the cores' timers fire, all in
//! order of virtual time.

use std::time::Instant;

use super::{Flight, Sim, Stage};
use crate::membership::{CmdId, LeaseMember, Membership, RedisFailure, Reply, ScriptValue};
use crate::testing::{Job, Submitted};

impl Sim {
    /// Sends node `n`'s commands and keeps its events.
    pub(super) fn drain(&mut self, n: usize) {
        let unlinked: Vec<usize> = (0..self.nodes.len()).filter(|m| *m != n && !self.linked(n, *m)).collect();
        let node = &mut self.nodes[n];
        let Some(core) = node.core.as_mut() else { return };
        while let Some((id, cmd)) = core.poll_command() {
            // The sender is who sent it, not whom the command names: invariant 2 compares them.
            let job = Job { from: node.lease.clone(), tag: self.next_tag, call: cmd.to_call() };
            let stage = Stage::ToRedis(self.now + self.cfg.latency);
            let unlinked = unlinked.clone();
            let flight = Flight { node: n, job, id, sent: self.now, stage, timed_out: false, unlinked };
            self.flights.insert(self.next_tag, flight);
            self.next_tag += 1;
        }
        while let Some(event) = core.poll_event() {
            node.events.push(event);
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let flights = self.flights.values().flat_map(|f| {
            let stage = match f.stage {
                Stage::ToRedis(at) | Stage::ToNode(at, _) => Some(at),
                Stage::Queued | Stage::Lost => None,
            };
            let timeout = (!f.timed_out).then(|| f.sent + self.cfg.timeout);
            [stage, timeout]
        });
        let cores = self.nodes.iter().map(|n| n.core.as_ref().map(Membership::poll_timeout));
        flights.chain(cores).chain([self.redis.paused_until()]).flatten().min()
    }

    pub(super) fn run_until(&mut self, target: Instant) {
        while let Some(at) = self.next_event().filter(|at| *at <= target) {
            self.now = self.now.max(at);
            self.step(self.now);
        }
        self.now = target;
    }

    /// Everything due at `now`.
    fn step(&mut self, now: Instant) {
        if self.redis.paused_until().is_some_and(|until| until <= now) {
            self.pause_ended(now);
            for job in self.redis.resume(now) {
                let value = self.redis.run(&job, now);
                self.ran(&job, value, now);
            }
        }
        let arriving: Vec<u64> = self
            .flights
            .iter()
            .filter(|(_, f)| matches!(f.stage, Stage::ToRedis(at) if at <= now))
            .map(|(t, _)| *t)
            .collect();
        for tag in arriving {
            let job = self.flights[&tag].job.clone();
            match self.redis.submit(job.clone(), now) {
                Submitted::Ran(value) => self.ran(&job, value, now),
                Submitted::Queued => self.set_stage(tag, Stage::Queued),
                Submitted::Lost => self.set_stage(tag, Stage::Lost),
            }
        }
        let answered: Vec<u64> = self
            .flights
            .iter()
            .filter(|(_, f)| matches!(f.stage, Stage::ToNode(at, _) if at <= now))
            .map(|(t, _)| *t)
            .collect();
        for tag in answered {
            if self.redis.is_cut(&self.nodes[self.flights[&tag].node].id) {
                // Lost on the way back: the node hears of it at its timeout.
                self.set_stage(tag, Stage::Lost);
                continue;
            }
            let flight = self.flights.remove(&tag).expect("listed");
            let Stage::ToNode(_, value) = flight.stage else { unreachable!("listed as answered") };
            if !flight.timed_out {
                let reply = flight.job.call.script.decode(&value).map_err(|e| {
                    self.violations.push(format!("undecodable answer {value:?}: {e:?}"));
                    RedisFailure::Error(e.0)
                });
                self.deliver(flight.node, &flight.job.from, flight.id, reply, now);
            }
        }
        let timeout = self.cfg.timeout;
        let expired: Vec<u64> =
            self.flights.iter().filter(|(_, f)| !f.timed_out && f.sent + timeout <= now).map(|(t, _)| *t).collect();
        for tag in expired {
            let flight = self.flights.get_mut(&tag).expect("listed");
            flight.timed_out = true;
            let (node, from, id) = (flight.node, flight.job.from.clone(), flight.id);
            if matches!(flight.stage, Stage::Lost) {
                self.flights.remove(&tag);
            }
            self.deliver(node, &from, id, Err(RedisFailure::Timeout), now);
        }
        for n in 0..self.nodes.len() {
            if let Some(core) = self.nodes[n].core.as_mut().filter(|c| c.poll_timeout() <= now) {
                core.handle_timeout(now);
                self.drain(n);
            }
        }
    }

    /// A lost flight whose node has been told already is forgotten.
    pub(super) fn set_stage(&mut self, tag: u64, stage: Stage) {
        let Some(flight) = self.flights.get_mut(&tag) else { return };
        if matches!(stage, Stage::Lost) && flight.timed_out {
            self.flights.remove(&tag);
        } else {
            flight.stage = stage;
        }
    }

    /// An answer (or failure) for the incarnation `from` of node `n`, if it still runs.
    fn deliver(&mut self, n: usize, from: &LeaseMember, id: CmdId, reply: Result<Reply, RedisFailure>, now: Instant) {
        let node = &mut self.nodes[n];
        if node.lease != *from {
            return;
        }
        if let Some(core) = node.core.as_mut() {
            core.handle_reply(id, reply, now);
            self.drain(n);
        }
    }

    /// A script ran at Redis: its answer sets off back, and the invariants judged at that
    /// moment are checked.
    fn ran(&mut self, job: &Job, value: ScriptValue, now: Instant) {
        self.last_run.insert(job.from.clone(), now);
        self.set_stage(job.tag, Stage::ToNode(now + self.cfg.latency, value));
        self.after_script(job, now);
    }
}
