//! A tiny deterministic random generator for tests: no dependency, and every run replays the
//! same sequence.

pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    pub(crate) fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// True with the given probability in percent.
    pub(crate) fn chance(&mut self, percent: u32) -> bool {
        self.next() % 100 < percent
    }

    /// A value in `0..bound` (`bound` > 0).
    pub(crate) fn below(&mut self, bound: u32) -> u32 {
        self.next() % bound
    }
}
