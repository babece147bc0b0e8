//! How busy this process's shards are, for the cluster's heartbeat (other nodes send clients to
//! the least loaded): the time shards spend outside their wait, and the packets they forward.
//! Process-wide totals, since a node is one process; read as differences between two samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static BUSY_NANOS: AtomicU64 = AtomicU64::new(0);
static FORWARDED_PACKETS: AtomicU64 = AtomicU64::new(0);

/// A shard worked for `busy` (one wakeup's handling, from waking to waiting again).
pub(crate) fn add_busy(busy: Duration) {
    BUSY_NANOS.fetch_add(u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// A packet's fan-out sent `copies` copies.
pub(crate) fn add_forwarded(copies: u64) {
    FORWARDED_PACKETS.fetch_add(copies, Ordering::Relaxed);
}

/// Totals since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSample {
    /// Time all shards together spent working.
    pub busy: Duration,
    /// Packets forwarded to subscribers.
    pub forwarded: u64,
}

/// The totals now.
pub fn sample() -> LoadSample {
    LoadSample {
        busy: Duration::from_nanos(BUSY_NANOS.load(Ordering::Relaxed)),
        forwarded: FORWARDED_PACKETS.load(Ordering::Relaxed),
    }
}

impl LoadSample {
    /// Over the `elapsed` since `earlier`, with `shards` shards: the mean share of time a shard
    /// was busy (0..=1) and the packets forwarded per second.
    pub fn since(&self, earlier: &LoadSample, elapsed: Duration, shards: usize) -> (f32, u64) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let busy = self.busy.saturating_sub(earlier.busy).as_secs_f64() / (secs * shards.max(1) as f64);
        let pps = self.forwarded.saturating_sub(earlier.forwarded) as f64 / secs;
        (busy.clamp(0.0, 1.0) as f32, pps.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_is_per_shard_and_rates_are_per_second() {
        let a = LoadSample { busy: Duration::from_millis(100), forwarded: 1_000 };
        let b = LoadSample { busy: Duration::from_millis(1_100), forwarded: 5_000 };
        let (busy, pps) = b.since(&a, Duration::from_secs(2), 2);
        assert!((busy - 0.25).abs() < 1e-6, "{busy}");
        assert_eq!(pps, 2_000);
        let (busy, _) = b.since(&a, Duration::from_millis(100), 1);
        assert_eq!(busy, 1.0, "clamped");
    }
}
