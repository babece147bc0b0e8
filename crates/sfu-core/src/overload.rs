//! What a shard gives up first when it cannot keep up.
//!
//! A shard that falls behind lets datagrams queue in its socket. Once the buffer is full the
//! kernel drops whatever arrives next: publishers' media, subscribers' feedback and STUN
//! keepalives alike, and a publisher can lose its connection. Forwarding is most of a shard's
//! work (every published packet is sent once per subscriber), so that is what the shard sheds:
//! each shed level caps every subscriber's video one simulcast layer lower (the top layer has
//! several packets per frame, the lowest one or two). Levels come one at a time once the
//! backlog has stayed high for a moment, and go one at a time after it has stayed low for a
//! while, so the server does not oscillate between overload and relief.
//!
//! The caller measures its socket's backlog, feeds it to [`OverloadGuard::on_backlog`] and
//! applies a changed level to its forwarders
//! ([`Forwarder::set_shed_levels`](crate::Forwarder::set_shed_levels)).

use std::time::{Duration, Instant};

/// Backlog (bytes the kernel holds for the socket, its own accounting) at or above which the
/// shard is behind. About 0.1 s of a busy shard's input: enough to ride out a keyframe burst,
/// small against the 8 MiB buffer.
pub const SHED_BACKLOG_BYTES: usize = 1024 * 1024;
/// The backlog must stay high this long before the first level: a shard that stalls for a
/// moment (a burst of handshakes as many subscribers join) catches up by itself.
pub const SHED_AFTER: Duration = Duration::from_millis(200);
/// Backlog at or below which the shard is keeping up.
pub const CLEAR_BACKLOG_BYTES: usize = 128 * 1024;
/// While still behind, the next level follows after this long: time for the previous level to
/// take effect (switching down waits for keyframes).
pub const SHED_STEP_INTERVAL: Duration = Duration::from_millis(500);
/// A level is lifted after the backlog has stayed low this long (and no sooner than this after
/// the previous change).
pub const RECOVER_AFTER: Duration = Duration::from_secs(5);
/// Most levels: with three simulcast layers, level 2 leaves only the lowest.
pub const MAX_SHED_LEVEL: u8 = 2;

/// One shard's shed level and the times that move it.
#[derive(Clone, Debug, Default)]
pub struct OverloadGuard {
    level: u8,
    changed_at: Option<Instant>,
    clear_since: Option<Instant>,
    high_since: Option<Instant>,
}

impl OverloadGuard {
    /// A guard at level 0: nothing shed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Layers shed now (0: none).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Takes a measurement of the socket's backlog; returns the new level when it changed.
    pub fn on_backlog(&mut self, queued_bytes: usize, now: Instant) -> Option<u8> {
        let since_change = |at: Option<Instant>| at.map_or(Duration::MAX, |at| now.saturating_duration_since(at));
        if queued_bytes >= SHED_BACKLOG_BYTES {
            self.clear_since = None;
            let high_since = *self.high_since.get_or_insert(now);
            if self.level < MAX_SHED_LEVEL
                && now.saturating_duration_since(high_since) >= SHED_AFTER
                && since_change(self.changed_at) >= SHED_STEP_INTERVAL
            {
                return Some(self.change(self.level + 1, now));
            }
        } else if queued_bytes <= CLEAR_BACKLOG_BYTES {
            self.high_since = None;
            let clear_since = *self.clear_since.get_or_insert(now);
            if self.level > 0
                && now.saturating_duration_since(clear_since) >= RECOVER_AFTER
                && since_change(self.changed_at) >= RECOVER_AFTER
            {
                // The next step down needs its own quiet spell.
                self.clear_since = Some(now);
                return Some(self.change(self.level - 1, now));
            }
        } else {
            self.clear_since = None;
            self.high_since = None;
        }
        None
    }

    fn change(&mut self, level: u8, now: Instant) -> u8 {
        self.level = level;
        self.changed_at = Some(now);
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH: usize = SHED_BACKLOG_BYTES;
    const LOW: usize = CLEAR_BACKLOG_BYTES;
    const MIDDLE: usize = (SHED_BACKLOG_BYTES + CLEAR_BACKLOG_BYTES) / 2;

    /// Feeds (ms, backlog) samples; returns (ms, new level) for each change.
    fn run(samples: &[(u64, usize)]) -> Vec<(u64, u8)> {
        let start = Instant::now();
        let mut guard = OverloadGuard::new();
        samples
            .iter()
            .filter_map(|&(ms, bytes)| guard.on_backlog(bytes, start + Duration::from_millis(ms)).map(|l| (ms, l)))
            .collect()
    }

    /// A sample every 100 ms from `from` to `to` (exclusive) with this backlog.
    fn steady(from: u64, to: u64, bytes: usize) -> Vec<(u64, usize)> {
        (from..to).step_by(100).map(|ms| (ms, bytes)).collect()
    }

    #[test]
    fn sheds_a_level_at_a_time_up_to_the_most() {
        assert_eq!(run(&steady(0, 3_000, HIGH)), vec![(200, 1), (700, 2)]);
    }

    #[test]
    fn a_moment_behind_sheds_nothing() {
        let mut samples = steady(0, 200, HIGH);
        samples.extend(steady(200, 1_000, LOW));
        samples.extend(steady(1_000, 1_200, HIGH));
        samples.extend(steady(1_200, 10_000, MIDDLE));
        assert_eq!(run(&samples), vec![]);
    }

    #[test]
    fn a_backlog_that_stays_sheds_one_level_and_quiet_lifts_it() {
        let mut samples = steady(0, 300, HIGH);
        samples.extend(steady(300, 10_000, LOW));
        // Lifted after 5 s of quiet, counted from the first low sample.
        assert_eq!(run(&samples), vec![(200, 1), (5_300, 0)]);
    }

    #[test]
    fn each_level_is_lifted_after_its_own_quiet_spell() {
        let mut samples = steady(0, 800, HIGH);
        samples.extend(steady(800, 20_000, LOW));
        assert_eq!(run(&samples), vec![(200, 1), (700, 2), (5_800, 1), (10_800, 0)]);
    }

    #[test]
    fn a_backlog_between_the_thresholds_holds_the_level() {
        let mut samples = steady(0, 300, HIGH);
        samples.extend(steady(300, 4_000, LOW));
        // Not quite clear for a moment: the quiet spell starts again.
        samples.extend(steady(4_000, 4_500, MIDDLE));
        samples.extend(steady(4_500, 12_000, LOW));
        assert_eq!(run(&samples), vec![(200, 1), (9_500, 0)]);
    }

    #[test]
    fn no_backlog_no_shedding() {
        assert_eq!(run(&steady(0, 10_000, MIDDLE)), vec![]);
        assert_eq!(run(&steady(0, 10_000, 0)), vec![]);
    }
}
