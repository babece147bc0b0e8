//! The mapping from input to output sequence numbers of one input stream.
//!
//! Output = input + offset, where the offset drops by one after every packet deliberately not
//! forwarded, so such packets leave no gap. A late packet must use the offset that applied at
//! its position, so the offsets are kept as ranges of input sequence numbers.

use std::collections::VecDeque;

/// Bound on remembered ranges. Runs of consecutive skips share one range, so this is only
/// reached when forwarded and skipped packets alternate; then the oldest ranges are forgotten
/// and their late packets count as too old.
const MAX_RANGES: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct SeqOffsets {
    /// `(first input seq, offset)` of the range that applies from there on. Offsets are
    /// wrapping (an output below the input is a "negative" offset). Kept apart from the older
    /// ranges, and those are usually none: every forwarded copy reads this, and a range in the
    /// struct itself costs no cache miss of its own.
    newest: (u64, u64),
    /// Earlier ranges in increasing input order; each applies up to the next.
    older: VecDeque<(u64, u64)>,
}

impl SeqOffsets {
    pub(crate) fn new(first_input: u64, offset: u64) -> Self {
        Self { newest: (first_input, offset), older: VecDeque::new() }
    }

    /// The oldest input sequence number that still has an output slot.
    pub(crate) fn floor(&self) -> u64 {
        self.older.front().map_or(self.newest.0, |&(first, _)| first)
    }

    /// The offset for `input`, or `None` if it is older than every range.
    pub(crate) fn offset_for(&self, input: u64) -> Option<u64> {
        if self.newest.0 <= input {
            return Some(self.newest.1);
        }
        self.older.iter().rev().find(|&&(first, _)| first <= input).map(|&(_, offset)| offset)
    }

    /// Removes the output slot of `input`, the newest input so far: later inputs move down one.
    pub(crate) fn remove_slot(&mut self, input: u64) {
        let shifted = (input + 1, self.newest.1.wrapping_sub(1));
        if self.newest.0 == input {
            // The range would cover only the removed input: reuse it.
            self.newest = shifted;
        } else {
            self.older.push_back(std::mem::replace(&mut self.newest, shifted));
        }
        if self.older.len() >= MAX_RANGES {
            self.older.pop_front();
        }
    }

    /// Drops ranges that only cover inputs older than `oldest_useful`.
    pub(crate) fn forget_before(&mut self, oldest_useful: u64) {
        while !self.older.is_empty() {
            let next_first = self.older.get(1).map_or(self.newest.0, |&(first, _)| first);
            if next_first > oldest_useful {
                break;
            }
            self.older.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.older.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_shift_later_inputs_only() {
        let mut offsets = SeqOffsets::new(100, 1000);
        offsets.remove_slot(103);
        offsets.remove_slot(104); // consecutive skips share one range
        offsets.remove_slot(110);
        let cases = [(99, None), (100, Some(1000)), (102, Some(1000)), (105, Some(998)), (111, Some(997))];
        for (input, expected) in cases {
            assert_eq!(offsets.offset_for(input), expected, "{input}");
        }
        assert_eq!(offsets.len(), 3);
    }

    #[test]
    fn ranges_stay_bounded() {
        let mut offsets = SeqOffsets::new(0, 0);
        for input in (1..1000).step_by(2) {
            offsets.remove_slot(input);
        }
        assert_eq!(offsets.len(), MAX_RANGES);
        assert!(offsets.floor() > 0);
        assert_eq!(offsets.offset_for(1000), Some(0u64.wrapping_sub(500)));
        offsets.forget_before(990);
        assert_eq!(offsets.floor(), 990);
    }
}
