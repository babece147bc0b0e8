//! Redis's clock in a simulation: the virtual time of the nodes, shifted by a skew, so the
//! tests show that only Redis's own `TIME` judges expiries.

use std::time::Instant;

/// Maps the simulation's `Instant`s to Redis milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct FakeClock {
    origin: Instant,
    origin_ms: i64,
}

impl FakeClock {
    /// At `origin` Redis reads `1.7e12 + skew_ms` ms: a skew runs it ahead of (or behind) the
    /// nodes' clocks, which start at `origin` too.
    pub fn new(origin: Instant, skew_ms: i64) -> Self {
        Self { origin, origin_ms: 1_700_000_000_000 + skew_ms }
    }

    /// Redis's `TIME` at `at`, in milliseconds.
    pub fn redis_ms(&self, at: Instant) -> i64 {
        let elapsed = at.saturating_duration_since(self.origin).as_millis();
        self.origin_ms + i64::try_from(elapsed).expect("simulations last less than an age")
    }
}
