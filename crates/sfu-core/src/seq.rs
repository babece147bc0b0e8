//! Extended ("unwrapped") RTP sequence numbers and timestamps.
//!
//! RTP counters wrap (16-bit sequence numbers every 65536 packets, 32-bit timestamps every
//! ~13 hours at 90 kHz). Comparing and subtracting is only sane on 64-bit values that keep
//! counting, so each stream unwraps its counters on arrival. A value is placed in the cycle that
//! puts it closest to the highest value seen so far, which handles reordering within half the
//! counter range on either side of a wrap.

/// Turns 16-bit RTP sequence numbers of one stream into a monotonic 64-bit count.
///
/// The first value lands in cycle 1 (`65536 + seq`), so packets that arrive late from before the
/// first one still get a value (down to 32768 below the highest) instead of underflowing.
#[derive(Clone, Debug, Default)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `seq`, remembering it if it is the highest so far.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let extended = self.peek(seq);
        if self.highest.is_none_or(|highest| extended > highest) {
            self.highest = Some(extended);
        }
        extended
    }

    /// The extended value `seq` would get, without remembering it.
    pub fn peek(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1 << 16) | u64::from(seq),
            Some(highest) => {
                let delta = seq.wrapping_sub(highest as u16) as i16;
                highest.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    /// The highest extended value seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

/// Turns 32-bit RTP timestamps of one stream into a monotonic 64-bit count; like
/// [`SeqUnwrapper`], the first value lands in cycle 1 (`2^32 + ts`).
#[derive(Clone, Debug, Default)]
pub struct TsUnwrapper {
    highest: Option<u64>,
}

impl TsUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `ts`, remembering it if it is the highest so far.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        let extended = self.peek(ts);
        if self.highest.is_none_or(|highest| extended > highest) {
            self.highest = Some(extended);
        }
        extended
    }

    /// The extended value `ts` would get, without remembering it.
    pub fn peek(&self, ts: u32) -> u64 {
        match self.highest {
            None => (1 << 32) | u64::from(ts),
            Some(highest) => {
                let delta = ts.wrapping_sub(highest as u32) as i32;
                highest.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    /// The highest extended value seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ_CYCLE: u64 = 1 << 16;
    const TS_CYCLE: u64 = 1 << 32;

    #[test]
    fn sequence_numbers_unwrap() {
        // Each case feeds the inputs in order and expects these extended values.
        let cases: &[(&str, &[u16], &[u64])] = &[
            ("in order", &[1, 2, 3], &[SEQ_CYCLE + 1, SEQ_CYCLE + 2, SEQ_CYCLE + 3]),
            (
                "wrap 65535 -> 0",
                &[65534, 65535, 0, 1],
                &[SEQ_CYCLE + 65534, SEQ_CYCLE + 65535, 2 * SEQ_CYCLE, 2 * SEQ_CYCLE + 1],
            ),
            (
                "reordered across the wrap",
                &[65535, 1, 0, 65534, 2],
                &[SEQ_CYCLE + 65535, 2 * SEQ_CYCLE + 1, 2 * SEQ_CYCLE, SEQ_CYCLE + 65534, 2 * SEQ_CYCLE + 2],
            ),
            ("late packet from before the first", &[0, 65535], &[SEQ_CYCLE, SEQ_CYCLE - 1]),
            ("jump within half range", &[10, 32777], &[SEQ_CYCLE + 10, SEQ_CYCLE + 32777]),
            ("jump past half range reads as old", &[10, 32779], &[SEQ_CYCLE + 10, 32779]),
            ("duplicate", &[7, 7], &[SEQ_CYCLE + 7, SEQ_CYCLE + 7]),
        ];
        for (name, inputs, expected) in cases {
            let mut unwrapper = SeqUnwrapper::new();
            let got: Vec<u64> = inputs.iter().map(|&seq| unwrapper.unwrap(seq)).collect();
            assert_eq!(&got, expected, "{name}");
        }
    }

    #[test]
    fn many_wraps_keep_counting() {
        let mut unwrapper = SeqUnwrapper::new();
        let mut seq = 100u16;
        for i in 0..200_000u64 {
            assert_eq!(unwrapper.unwrap(seq), SEQ_CYCLE + 100 + i);
            seq = seq.wrapping_add(1);
        }
    }

    #[test]
    fn peek_does_not_remember() {
        let mut unwrapper = SeqUnwrapper::new();
        unwrapper.unwrap(65535);
        assert_eq!(unwrapper.peek(3), 2 * SEQ_CYCLE + 3);
        assert_eq!(unwrapper.highest(), Some(SEQ_CYCLE + 65535));
    }

    #[test]
    fn timestamps_unwrap() {
        let max = u32::MAX;
        let cases: &[(&str, &[u32], &[u64])] = &[
            ("in order", &[0, 3000, 6000], &[TS_CYCLE, TS_CYCLE + 3000, TS_CYCLE + 6000]),
            (
                "wrap at 2^32",
                &[max - 2999, max, 2999],
                &[TS_CYCLE + u64::from(max - 2999), TS_CYCLE + u64::from(max), 2 * TS_CYCLE + 2999],
            ),
            (
                "reordered across the wrap",
                &[max, 100, max - 100, 200],
                &[TS_CYCLE + u64::from(max), 2 * TS_CYCLE + 100, TS_CYCLE + u64::from(max - 100), 2 * TS_CYCLE + 200],
            ),
            ("late frame from before the first", &[10, max - 10], &[TS_CYCLE + 10, TS_CYCLE - 11]),
        ];
        for (name, inputs, expected) in cases {
            let mut unwrapper = TsUnwrapper::new();
            let got: Vec<u64> = inputs.iter().map(|&ts| unwrapper.unwrap(ts)).collect();
            assert_eq!(&got, expected, "{name}");
        }
    }
}
