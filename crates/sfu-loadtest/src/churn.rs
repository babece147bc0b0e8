//! Churn during the hold (`--churn 5/s`): that many subscribers per second leave cleanly (a
//! `leave` message, the WebSocket closed, the peer connection closed) and as many new ones join
//! the same rooms (on the same nodes) in their place, so the population stays about constant
//! while the server keeps creating and tearing down participants, the load a soak test needs.
//!
//! Who leaves is round-robin over the subscriber slots, so the oldest session always goes next
//! and every subscriber lives about `subscribers / rate` seconds. The pace is a fixed schedule
//! from the start of the hold, not a timer per event, so a late tick catches up (a bounded
//! number at a time) rather than losing events.

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

use crate::cli::MAX_CHURN_RATE;
use crate::media::peer::PublishSpec;
use crate::spawner::{SessionEnd, Spawner};

/// At most this many churn events in one tick, however late the tick is.
const MAX_BURST: u64 = 10;
/// No new churn while this many replacements have not joined yet or this many leaving sessions
/// have not ended: a server that stops answering is not flooded with more joins.
const MAX_IN_FLIGHT: usize = 64;

/// When churn events are due: the pure schedule, `rate` per second from the start of the hold.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    slots: usize,
    done: u64,
    next_slot: usize,
}

impl Pacer {
    pub fn new(rate: f64, slots: usize) -> Self {
        Self { rate: rate.clamp(0.0, MAX_CHURN_RATE), slots, done: 0, next_slot: 0 }
    }

    /// How many events are due `elapsed` into the hold that have not been taken yet, at most
    /// `MAX_BURST`.
    pub fn due(&self, elapsed: Duration) -> u64 {
        if self.slots == 0 {
            return 0;
        }
        let scheduled = (self.rate * elapsed.as_secs_f64()).floor() as u64;
        scheduled.saturating_sub(self.done).min(MAX_BURST)
    }

    /// Takes the next event: the slot whose subscriber leaves and is replaced.
    pub fn take(&mut self) -> usize {
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % self.slots.max(1);
        self.done += 1;
        slot
    }

    /// When the next event is due, counted from the start of the hold.
    pub fn next_at(&self) -> Duration {
        if self.rate <= 0.0 || self.slots == 0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64((self.done + 1) as f64 / self.rate)
    }
}

/// Churn counters, cumulative over the run (in the timeline and the report).
#[derive(Default)]
pub struct Counters {
    leaves: AtomicU64,
    left: AtomicU64,
    leave_errors: AtomicU64,
    joins: AtomicU64,
    joined: AtomicU64,
    join_failures: AtomicU64,
    skipped: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Subscribers told to leave.
    pub leaves: u64,
    /// ... whose session then ended cleanly.
    pub left: u64,
    /// ... whose session ended on an error instead (or had already failed).
    pub leave_errors: u64,
    /// Replacements started.
    pub joins: u64,
    /// ... that the server let in.
    pub joined: u64,
    /// ... whose session ended before joining (not counting those stopped at the end of the run).
    pub join_failures: u64,
    /// Events skipped because too many were still in flight.
    pub skipped: u64,
}

impl Counters {
    pub fn totals(&self) -> Totals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            leaves: l(&self.leaves),
            left: l(&self.left),
            leave_errors: l(&self.leave_errors),
            joins: l(&self.joins),
            joined: l(&self.joined),
            join_failures: l(&self.join_failures),
            skipped: l(&self.skipped),
        }
    }
}

/// One subscriber position: whoever holds it now, and how to make them leave.
struct Slot {
    node: usize,
    room: String,
    identity: String,
    publish: Option<PublishSpec>,
    id: u64,
    stop: watch::Sender<bool>,
    alive: bool,
    generation: u32,
}

pub struct Churn {
    pacer: Pacer,
    slots: Vec<Slot>,
    by_id: HashMap<u64, usize>,
    /// Sessions told to leave that have not ended yet.
    leaving: HashSet<u64>,
    /// Replacements not joined yet, with their joined flags.
    joining: HashMap<u64, Arc<AtomicBool>>,
    pub counters: Arc<Counters>,
}

/// The subscribers, each with a stop signal of its own, as the ramp starts them.
#[derive(Default)]
pub struct Subscribers {
    slots: Vec<Slot>,
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts one subscriber with a stop signal of its own.
    pub fn spawn(
        &mut self,
        spawner: &mut Spawner,
        node: usize,
        room: String,
        identity: String,
        publish: Option<PublishSpec>,
    ) {
        let (stop, rx) = watch::channel(false);
        let started = spawner.spawn(node, room.clone(), identity.clone(), publish, true, rx);
        self.slots.push(Slot { node, room, identity, publish, id: started.id, stop, alive: true, generation: 0 });
    }
}

impl Churn {
    /// Churns `rate` subscribers per second (0: none; the subscribers are still stopped by
    /// `stop_all`).
    pub fn new(rate: f64, subscribers: Subscribers) -> Self {
        let slots = subscribers.slots;
        let by_id = slots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        Self {
            pacer: Pacer::new(rate, slots.len()),
            slots,
            by_id,
            leaving: HashSet::new(),
            joining: HashMap::new(),
            counters: Arc::new(Counters::default()),
        }
    }

    pub fn next_at(&self) -> Duration {
        self.pacer.next_at()
    }

    /// Does the churn due `elapsed` into the hold: each event stops one subscriber and starts its
    /// replacement in the same room.
    pub fn tick(&mut self, elapsed: Duration, spawner: &mut Spawner) {
        self.poll_joined();
        let c = &self.counters;
        for _ in 0..self.pacer.due(elapsed) {
            if self.leaving.len() >= MAX_IN_FLIGHT || self.joining.len() >= MAX_IN_FLIGHT {
                // The schedule moves on; the count says how many were skipped.
                self.pacer.take();
                c.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let i = self.pacer.take();
            let slot = &mut self.slots[i];
            if slot.alive {
                let _ = slot.stop.send(true);
                self.leaving.insert(slot.id);
                c.leaves.fetch_add(1, Ordering::Relaxed);
            }
            self.by_id.remove(&slot.id);
            slot.generation += 1;
            let identity = format!("{}.{}", slot.identity, slot.generation);
            let (tx, rx) = watch::channel(false);
            let started = spawner.spawn(slot.node, slot.room.clone(), identity, slot.publish, true, rx);
            // The old sender goes: a session that did not leave on the signal leaves on the drop.
            slot.stop = tx;
            slot.id = started.id;
            slot.alive = true;
            self.by_id.insert(started.id, i);
            self.joining.insert(started.id, started.joined);
            c.joins.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_joined(&mut self) {
        let before = self.joining.len();
        self.joining.retain(|_, joined| !joined.load(Ordering::Relaxed));
        self.counters.joined.fetch_add((before - self.joining.len()) as u64, Ordering::Relaxed);
    }

    /// A session ended (reaped by the run).
    pub fn on_end(&mut self, end: SessionEnd) {
        let c = &self.counters;
        if self.leaving.remove(&end.id) {
            if end.failed {
                c.leave_errors.fetch_add(1, Ordering::Relaxed);
            } else {
                c.left.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(joined) = self.joining.remove(&end.id) {
            if end.joined || joined.load(Ordering::Relaxed) {
                c.joined.fetch_add(1, Ordering::Relaxed);
            } else {
                c.join_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(i) = self.by_id.remove(&end.id) {
            self.slots[i].alive = false;
        }
    }

    /// At the end of the hold: replacements that joined meanwhile are counted, the rest are left
    /// uncounted (they are stopped with everyone else).
    pub fn finish(&mut self) -> Totals {
        self.poll_joined();
        self.joining.clear();
        self.counters.totals()
    }

    /// Tells every current subscriber to leave.
    pub fn stop_all(&self) {
        for s in &self.slots {
            let _ = s.stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn paces_rate_per_second_from_the_start() {
        let mut p = Pacer::new(5.0, 100);
        assert_eq!(p.due(secs(0.0)), 0);
        assert_eq!(p.due(secs(0.19)), 0);
        assert_eq!(p.due(secs(0.2)), 1);
        assert_eq!(p.next_at(), secs(0.2));
        p.take();
        assert_eq!(p.due(secs(0.3)), 0);
        assert_eq!(p.next_at(), secs(0.4));
        // One second in, five events in all.
        let mut taken = 1;
        for _ in 0..p.due(secs(1.0)) {
            p.take();
            taken += 1;
        }
        assert_eq!(taken, 5);
    }

    #[test]
    fn late_ticks_catch_up_a_bounded_number_at_a_time() {
        let mut p = Pacer::new(20.0, 1000);
        // 10 s late: 200 events due, at most MAX_BURST per tick, none lost.
        let mut total = 0;
        for _ in 0..100 {
            let n = p.due(secs(10.0));
            assert!(n <= MAX_BURST);
            for _ in 0..n {
                p.take();
            }
            total += n;
        }
        assert_eq!(total, 200);
        assert_eq!(p.due(secs(10.0)), 0);
    }

    #[test]
    fn leaves_round_robin_oldest_first() {
        let mut p = Pacer::new(10.0, 3);
        let order: Vec<usize> = (0..7).map(|_| p.take()).collect();
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn rate_is_capped_and_empty_is_idle() {
        let p = Pacer::new(1000.0, 10);
        assert_eq!(p.next_at(), secs(1.0 / MAX_CHURN_RATE));
        let idle = Pacer::new(5.0, 0);
        assert_eq!(idle.due(secs(100.0)), 0);
        assert_eq!(idle.next_at(), Duration::MAX);
    }
}
