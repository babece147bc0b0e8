//! Which recent input sequence numbers were already handled, to catch duplicates.

/// How far back (in input packets) a late packet can still be placed in the output. Covers a
/// publisher retransmission arriving a round trip late on a high-bitrate layer.
pub(crate) const REORDER_WINDOW: u64 = 1024;

const WORDS: usize = (REORDER_WINDOW / 64) as usize;

/// A bitmap of the last [`REORDER_WINDOW`] extended sequence numbers, anchored at the highest.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeenWindow {
    bits: [u64; WORDS],
    highest: Option<u64>,
}

impl SeenWindow {
    /// The highest sequence number handled so far.
    pub(crate) fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `seq` is too far behind the highest to be tracked.
    pub(crate) fn is_behind_window(&self, seq: u64) -> bool {
        self.highest.is_some_and(|highest| highest >= seq.saturating_add(REORDER_WINDOW))
    }

    /// Whether `seq` was handled (only known inside the window).
    pub(crate) fn contains(&self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            return false;
        };
        seq <= highest && !self.is_behind_window(seq) && self.bit(seq)
    }

    /// Marks `seq` handled, sliding the window forward if it is the newest.
    pub(crate) fn insert(&mut self, seq: u64) {
        match self.highest {
            Some(highest) if seq <= highest => {
                if self.is_behind_window(seq) {
                    return;
                }
            }
            Some(highest) if seq - highest < REORDER_WINDOW => {
                (highest + 1..seq).for_each(|stale| self.clear_bit(stale));
                self.highest = Some(seq);
            }
            _ => {
                self.bits = [0; WORDS];
                self.highest = Some(seq);
            }
        }
        let (word, mask) = Self::position(seq);
        self.bits[word] |= mask;
    }

    fn bit(&self, seq: u64) -> bool {
        let (word, mask) = Self::position(seq);
        self.bits[word] & mask != 0
    }

    fn clear_bit(&mut self, seq: u64) {
        let (word, mask) = Self::position(seq);
        self.bits[word] &= !mask;
    }

    /// Word index (always < WORDS) and bit mask of `seq` in the ring.
    fn position(seq: u64) -> (usize, u64) {
        let slot = seq % REORDER_WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_sequence_numbers() {
        // (name, inserted, queried, expected)
        let cases: &[(&str, &[u64], u64, bool)] = &[
            ("empty", &[], 5, false),
            ("inserted", &[5], 5, true),
            ("not inserted", &[5, 7], 6, false),
            ("newer than highest", &[5], 6, false),
            ("late insert", &[5, 9, 7], 7, true),
            ("slot reused after slide", &[5, 5 + REORDER_WINDOW], 5, false),
            ("stale bit cleared by slide", &[4, 10, 4 + REORDER_WINDOW + 1], 4 + REORDER_WINDOW, false),
            ("edge of window", &[100, 100 + REORDER_WINDOW - 1], 100, true),
            ("big jump clears all", &[100, 100 + 10 * REORDER_WINDOW], 100 + 9 * REORDER_WINDOW, false),
        ];
        for (name, inserted, queried, expected) in cases {
            let mut window = SeenWindow::default();
            inserted.iter().for_each(|&seq| window.insert(seq));
            assert_eq!(window.contains(*queried), *expected, "{name}");
        }
    }
}
