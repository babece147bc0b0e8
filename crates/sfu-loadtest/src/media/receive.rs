//! What a simulated subscriber tracks per received RTP stream: sequence numbers (loss,
//! duplicates, gaps still open) and whether video is decodable (a keyframe since the last
//! unrepaired loss).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: u64 = 4096;
/// Open gaps tracked at once; beyond this a gap only counts towards loss.
const MAX_OPEN_GAPS: usize = 1024;

pub enum Arrival {
    Fresh,
    Duplicate,
    /// Older than the tracking window: counted, but its loss status is unknown.
    TooOld,
}

pub struct StreamRx {
    pub video: bool,
    first: u64,
    highest: u64,
    started: bool,
    pub received: u64,
    pub duplicates: u64,
    seen: [u64; (WINDOW / 64) as usize],
    /// Sequence numbers missing since the given time, oldest first.
    gaps: VecDeque<(u64, Instant)>,
    /// Video: no keyframe yet, or a loss was not repaired in time.
    pub needs_keyframe: bool,
    pub last_pli: Option<Instant>,
    pub first_at: Option<Instant>,
}

impl StreamRx {
    pub fn new(video: bool) -> Self {
        Self {
            video,
            first: 0,
            highest: 0,
            started: false,
            received: 0,
            duplicates: 0,
            seen: [0; (WINDOW / 64) as usize],
            gaps: VecDeque::new(),
            needs_keyframe: video,
            last_pli: None,
            first_at: None,
        }
    }

    fn bit(&mut self, ext: u64) -> (usize, u64) {
        let i = (ext % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    pub fn record(&mut self, seq: u16, now: Instant) -> Arrival {
        if !self.started {
            self.started = true;
            // Start high enough that early reordering cannot go below zero.
            let ext = (1u64 << 32) + u64::from(seq);
            self.first = ext;
            self.highest = ext;
            self.received = 1;
            self.first_at = Some(now);
            let (w, b) = self.bit(ext);
            self.seen[w] |= b;
            return Arrival::Fresh;
        }
        let delta = seq.wrapping_sub(self.highest as u16) as i16;
        let ext = (self.highest as i64 + i64::from(delta)) as u64;
        if ext > self.highest {
            let gap_start = self.highest + 1;
            if ext - self.highest > WINDOW {
                self.seen = [0; (WINDOW / 64) as usize];
            } else {
                for s in gap_start..ext {
                    let (w, b) = self.bit(s);
                    self.seen[w] &= !b;
                }
            }
            for s in gap_start..ext {
                if self.gaps.len() >= MAX_OPEN_GAPS {
                    break;
                }
                self.gaps.push_back((s, now));
            }
            self.highest = ext;
            let (w, b) = self.bit(ext);
            self.seen[w] |= b;
            self.received += 1;
            return Arrival::Fresh;
        }
        if ext < self.first {
            // Reordered before the first packet seen: extend the expected range.
            self.first = ext;
            self.received += 1;
            return Arrival::Fresh;
        }
        if self.highest - ext >= WINDOW {
            self.received += 1;
            return Arrival::TooOld;
        }
        let (w, b) = self.bit(ext);
        if self.seen[w] & b != 0 {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.seen[w] |= b;
        self.received += 1;
        if let Some(pos) = self.gaps.iter().position(|(s, _)| *s == ext) {
            self.gaps.remove(pos);
        }
        Arrival::Fresh
    }

    pub fn expected(&self) -> u64 {
        if self.started { self.highest - self.first + 1 } else { 0 }
    }

    pub fn missing(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Drops gaps older than `window` (NACK had its chance); true if any was dropped.
    pub fn expire_gaps(&mut self, now: Instant, window: Duration) -> bool {
        let mut expired = false;
        while self.gaps.front().is_some_and(|(_, since)| now.duration_since(*since) > window) {
            self.gaps.pop_front();
            expired = true;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_duplicates_and_wraparound() {
        let now = Instant::now();
        let mut s = StreamRx::new(true);
        for seq in [65530u16, 65531, 65533, 65534, 65535, 0, 1, 3] {
            assert!(matches!(s.record(seq, now), Arrival::Fresh));
        }
        assert_eq!(s.expected(), 10);
        assert_eq!(s.missing(), 2);
        assert!(matches!(s.record(65532, now), Arrival::Fresh));
        assert_eq!(s.missing(), 1);
        assert!(matches!(s.record(65532, now), Arrival::Duplicate));
        assert_eq!(s.duplicates, 1);
        assert!(!s.expire_gaps(now, Duration::from_millis(100)));
        assert!(s.expire_gaps(now + Duration::from_millis(200), Duration::from_millis(100)));
    }
}
