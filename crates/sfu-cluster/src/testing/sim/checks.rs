//! The invariants of docs/cluster.md, judged on the Sim:
//!
//! 1. **No lost room.** When a script deletes a room record, no running node holds
//!    participants of it (with a lease Redis has seen), unless that node looked dead to Redis
//!    and to the deleting node (the deleter could not reach it when it sent the script, and it
//!    was cut off from Redis since it last wrote its lease and since Redis last came back; it
//!    may be back by the time the script runs, not yet having beaten), or Redis has not
//!    written its lease of the room for over a minute (the orphan sweep: its beats did not
//!    reach Redis that long). Either way its next beat writes the record again, with the same
//!    sid.
//! 2. **Own entries only.** Judged by the keyspace on every write (see `keyspace.rs`).
//! 3. **Rebuild.** One beat interval after the last flush, pause or cut ends, every running
//!    node's key and every room it holds (record and lease) are in Redis again.
//! 4. **Death is seen.** 6 s after a kill (or after the last of its scripts ran, if Redis ran
//!    one later: it was paused), the dead incarnation's key and leases are gone.

use std::time::{Duration, Instant};

use super::{Node, Sim};
use crate::membership::{BEAT_INTERVAL, LeaseMember, ORPHAN_MS, TTL_MS, keys};
use crate::testing::Job;
use sfu_proto::RoomId;

impl Sim {
    /// After a script ran at `now`: invariants 1 and 2 on what it did.
    pub(super) fn after_script(&mut self, job: &Job, now: Instant) {
        let ks = self.redis.keyspace();
        let writes: Vec<_> = ks.lease_writes[self.seen_lease_writes..].to_vec();
        self.seen_lease_writes = ks.lease_writes.len();
        for (room, member, _) in writes {
            let room = RoomId(keys::unescape(&room));
            let in_hold = |n: &super::Node| n.hold_first_tag.get(&room).is_some_and(|first| job.tag >= *first);
            if let Some(node) = self.nodes.iter_mut().find(|n| n.lease == member && in_hold(n)) {
                node.lease_written.insert(room, now);
            }
        }

        let ks = self.redis.keyspace();
        let fresh: Vec<String> = ks.violations[self.seen_keyspace_violations..].to_vec();
        self.seen_keyspace_violations = ks.violations.len();
        self.violations.extend(fresh.into_iter().map(|v| format!("invariant 2: {v}")));

        let ks = self.redis.keyspace();
        let deletions = ks.deletions[self.seen_deletions..].to_vec();
        self.seen_deletions = ks.deletions.len();
        for deletion in deletions {
            let room = RoomId(keys::unescape(&deletion.room));
            for (n, node) in self.nodes.iter().enumerate() {
                let Some(written) = node.lease_written.get(&room).filter(|_| node.core.is_some()) else {
                    continue;
                };
                if !self.may_lose(n, *written, job.tag, now) {
                    self.violations.push(format!(
                        "invariant 1: {:?} ({}) deleted {} by {} while {} holds it (cut from Redis for {:?}, its lease written {:?} ago)",
                        job.call.script,
                        self.redis.clock().redis_ms(now),
                        room,
                        deletion.by,
                        node.lease,
                        node.cut_since.map(|s| now - s),
                        now - *written,
                    ));
                }
            }
        }
    }

    /// The exceptions of invariant 1 for node `n`. It looked dead to Redis and to the deleter:
    /// the deleter could not reach it when it sent the script (`tag`), and it was cut off from
    /// Redis at some time since its lease was last `written` and since Redis last came back
    /// from a flush or from a pause long enough to be an outage (before that, the steady rule is
    /// what must protect it: once Redis is back, a node that is not cut off rewrites its lease
    /// within a beat). A pause shorter than `BEAT_GAP_MS` is none: Redis heard beats on time,
    /// the steady rule rightly stays out of it, and a node cut off across it lets its lease
    /// lapse as it would without the pause. Or Redis has not written its lease for longer than
    /// the orphan sweep waits.
    fn may_lose(&self, n: usize, written: Instant, tag: u64, now: Instant) -> bool {
        let since =
            [Some(written), self.last_flush, self.last_long_pause_end].into_iter().flatten().max().unwrap_or(written);
        now - written > Duration::from_millis(ORPHAN_MS)
            || (self.flights.get(&tag).is_some_and(|f| f.unlinked.contains(&n)) && self.cut_during(n, since, now))
    }

    /// Whether node `n` was cut off from Redis at some time in `from..=to`.
    fn cut_during(&self, n: usize, from: Instant, to: Instant) -> bool {
        let node = &self.nodes[n];
        node.cut_since.is_some_and(|start| start <= to)
            || node.last_cut.is_some_and(|(start, end)| start <= to && end >= from)
    }

    /// After every step: invariants 3 and 4 (not while Redis is paused: nobody can read it).
    pub(super) fn check_state(&mut self) {
        if self.redis.paused_until().is_some() {
            return;
        }
        let now = self.now;
        let redis_now = self.redis.clock().redis_ms(now);
        let settle = BEAT_INTERVAL + 2 * self.cfg.latency + Duration::from_millis(1);
        let mut found = Vec::new();
        for node in self.nodes.iter().filter(|n| n.core.is_some() && n.cut_since.is_none()) {
            let quiet = [Some(node.started), self.last_flush, self.last_pause_end, node.last_cut.map(|c| c.1)]
                .into_iter()
                .flatten()
                .max();
            if quiet.is_some_and(|q| now < q + settle) {
                continue;
            }
            found.extend(self.rebuilt(node, redis_now, now, settle));
        }
        for (dead, killed) in &self.dead {
            let last = self.last_run.get(dead).map_or(*killed, |r| (*r).max(*killed));
            if now >= last + Duration::from_millis(TTL_MS + 1) {
                found.extend(self.gone(dead, redis_now));
            }
        }
        self.violations.extend(found);
    }

    /// Invariant 3 for one node.
    fn rebuilt(&self, node: &Node, redis_now: i64, now: Instant, settle: Duration) -> Vec<String> {
        let ks = self.redis.keyspace();
        let mut found = Vec::new();
        let key = ks.peek_hash(&keys::node_key(&node.id), redis_now);
        if key.and_then(|k| k.get("boot")) != Some(&node.lease.boot.0) {
            found.push(format!("invariant 3: {} has no node key", node.lease));
        }
        for (room, since) in &node.held_since {
            if now < *since + settle {
                continue;
            }
            if ks.peek_hash(&keys::room_key(room), redis_now).is_none() {
                found.push(format!("invariant 3: {} holds {room} but its record is missing", node.lease));
            }
            let lease = ks.peek_zset(&keys::leases_key(room)).and_then(|z| z.get(&node.lease.to_string()));
            if lease.is_none_or(|at| *at < redis_now) {
                found.push(format!("invariant 3: {} holds {room} without a live lease", node.lease));
            }
        }
        found
    }

    /// Invariant 4 for one dead incarnation.
    fn gone(&self, dead: &LeaseMember, redis_now: i64) -> Vec<String> {
        let ks = self.redis.keyspace();
        let mut found = Vec::new();
        let key = ks.peek_hash(&keys::node_key(&dead.node), redis_now);
        if key.and_then(|k| k.get("boot")) == Some(&dead.boot.0) {
            found.push(format!("invariant 4: dead {dead} still has its node key"));
        }
        for (room, leases) in ks.lease_sets() {
            if leases.get(&dead.to_string()).is_some_and(|at| *at >= redis_now) {
                found.push(format!("invariant 4: dead {dead} still holds a lease on {room}"));
            }
        }
        found
    }
}
