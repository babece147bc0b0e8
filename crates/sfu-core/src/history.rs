//! Bounded retransmission history of one outgoing stream, for answering subscriber NACKs.

use crate::seq::SeqUnwrapper;
use std::time::{Duration, Instant};

/// The most recent packets of one outgoing stream, keyed by their output sequence number.
///
/// A fixed ring of slots indexed by the low bits of the sequence number: inserting and looking
/// up are O(1) and memory never grows. Entries remember their extended sequence number, so a
/// slot left over from an earlier wrap of the 16-bit counter is never mistaken for the packet
/// asked for.
#[derive(Debug)]
pub struct RtpHistory<T> {
    slots: Vec<Option<(u64, T)>>,
    mask: u64,
    unwrapper: SeqUnwrapper,
}

impl<T> RtpHistory<T> {
    /// A history holding up to `capacity` packets, rounded up to a power of two and clamped to
    /// 1..=65536 (more than the sequence space would alias).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1 << 16).next_power_of_two();
        Self {
            slots: std::iter::repeat_with(|| None).take(capacity).collect(),
            mask: capacity as u64 - 1,
            unwrapper: SeqUnwrapper::new(),
        }
    }

    /// How many packets fit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Stores the packet sent with output sequence number `seq`. A packet older than the one
    /// already in its slot is not stored (it fell out of the window).
    pub fn insert(&mut self, seq: u16, packet: T) {
        let newest = self.unwrapper.highest();
        let extended = self.unwrapper.unwrap(seq);
        let Some(slot) = self.slots.get_mut((extended & self.mask) as usize) else {
            return;
        };
        // Only a late packet can find a newer one in its slot. The usual, newest packet does
        // not read the slot: its line is long out of cache, and a store need not wait for it.
        let late = newest.is_some_and(|newest| extended <= newest);
        if late && slot.as_ref().is_some_and(|(held, _)| *held > extended) {
            return;
        }
        *slot = Some((extended, packet));
    }

    /// The packet sent with `seq`, unless it was never stored or has been overwritten.
    pub fn get(&self, seq: u16) -> Option<&T> {
        self.unwrapper.highest()?;
        let extended = self.unwrapper.peek(seq);
        match self.slots.get((extended & self.mask) as usize)? {
            Some((held, packet)) if *held == extended => Some(packet),
            _ => None,
        }
    }

    /// Mutable access to the packet sent with `seq` (to record that it was re-sent).
    pub fn get_mut(&mut self, seq: u16) -> Option<&mut T> {
        self.unwrapper.highest()?;
        let extended = self.unwrapper.peek(seq);
        match self.slots.get_mut((extended & self.mask) as usize)? {
            Some((held, packet)) if *held == extended => Some(packet),
            _ => None,
        }
    }

    /// Forgets every packet (for example after the stream was reset).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|slot| *slot = None);
        self.unwrapper = SeqUnwrapper::new();
    }
}

/// How often one packet may be re-sent on NACK. A congested subscriber NACKs what congestion
/// lost, and answering every repeat of every NACK multiplies the very traffic that congests it.
pub const MAX_RESENDS: u8 = 3;
/// Repeats of a NACK closer than this are answered once (a NACK is normally repeated once per
/// round trip; loopback and LAN round trips are shorter than a frame).
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(40);

/// The re-send record of one stored packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResendGuard {
    count: u8,
    last: Option<Instant>,
}

impl ResendGuard {
    /// Whether the packet may be re-sent now; if so, records it.
    pub fn allow(&mut self, now: Instant) -> bool {
        let too_soon = self.last.is_some_and(|last| now.saturating_duration_since(last) < MIN_RESEND_INTERVAL);
        if self.count >= MAX_RESENDS || too_soon {
            return false;
        }
        self.count += 1;
        self.last = Some(now);
        true
    }
}

/// The re-send records of one stream's NACKed packets, by output sequence number. Kept apart
/// from the [`RtpHistory`] of sent packets, which is written on every copy and so must stay
/// small, and made on the first NACK: most subscribers never send one.
#[derive(Debug, Default)]
pub struct ResendLog {
    guards: Option<RtpHistory<ResendGuard>>,
}

impl ResendLog {
    /// Whether the packet sent as `seq` may be re-sent now; if so, records it. `capacity` is
    /// the length of the stream's history. A packet whose slot holds a newer NACKed one is
    /// refused: it is at least `capacity` behind, so it has left the history too.
    pub fn allow(&mut self, seq: u16, capacity: usize, now: Instant) -> bool {
        let guards = self.guards.get_or_insert_with(|| RtpHistory::new(capacity));
        if guards.get(seq).is_none() {
            guards.insert(seq, ResendGuard::default());
        }
        guards.get_mut(seq).is_some_and(|guard| guard.allow(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_a_bounded_power_of_two() {
        let cases = [(0, 1), (1, 1), (3, 4), (512, 512), (513, 1024), (1 << 20, 1 << 16)];
        for (asked, expected) in cases {
            assert_eq!(RtpHistory::<()>::new(asked).capacity(), expected, "{asked}");
        }
    }

    #[test]
    fn lookups_after_inserts() {
        // (name, capacity, inserted seqs, looked-up seq, expected hit)
        let cases: &[(&str, usize, &[u16], u16, bool)] = &[
            ("hit", 8, &[1, 2, 3], 2, true),
            ("never inserted", 8, &[1, 3], 2, false),
            ("newer than anything", 8, &[1, 2], 3, false),
            ("empty", 8, &[], 0, false),
            ("overwritten by newer", 4, &[1, 2, 3, 4, 5], 1, false),
            ("last of full ring", 4, &[1, 2, 3, 4, 5], 5, true),
            ("oldest kept", 4, &[1, 2, 3, 4, 5], 2, true),
            ("across the wrap, old side", 8, &[65534, 65535, 0, 1], 65535, true),
            ("across the wrap, new side", 8, &[65534, 65535, 0, 1], 0, true),
            ("overwritten across the wrap", 4, &[65533, 65534, 65535, 0, 1], 65533, false),
            ("reordered insert", 8, &[10, 12, 11], 11, true),
            ("late insert older than slot", 4, &[10, 14, 10], 10, false),
            // Only slot 0 was ever written; 65536 packets later seq 0 means a different packet.
            ("stale slot from previous cycle", 4, &[0, 32001, 64001, 65535], 0, false),
        ];
        for (name, capacity, inserted, wanted, hit) in cases {
            let mut history = RtpHistory::new(*capacity);
            for &seq in *inserted {
                history.insert(seq, seq);
            }
            let got = history.get(*wanted).copied();
            assert_eq!(got, hit.then_some(*wanted), "{name}");
        }
    }

    #[test]
    fn late_insert_does_not_evict_newer() {
        let mut history = RtpHistory::new(4);
        history.insert(14, "new");
        history.insert(10, "old");
        assert_eq!(history.get(14), Some(&"new"));
    }

    #[test]
    fn clear_forgets() {
        let mut history = RtpHistory::new(4);
        history.insert(1, ());
        history.clear();
        assert_eq!(history.get(1), None);
    }

    #[test]
    fn resends_are_limited_in_count_and_rate() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut guard = ResendGuard::default();
        // (time in ms, allowed?)
        let cases = [(0, true), (10, false), (39, false), (40, true), (100, true), (200, false), (1000, false)];
        for (ms, allowed) in cases {
            assert_eq!(guard.allow(at(ms)), allowed, "at {ms} ms");
        }
    }

    #[test]
    fn the_resend_log_guards_each_packet_on_its_own() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut log = ResendLog::default();
        // (time in ms, seq, allowed?)
        let cases = [
            (0, 10, true),
            (0, 11, true),
            (10, 10, false),
            (50, 10, true),
            (100, 10, true),
            (200, 10, false),
            (200, 11, true),
            // Older than 11 and in its slot (ring of 4): refused.
            (200, 65535, false),
            (200, 9, true),
            // 14 shares 10's slot in a log of 4: its own first re-send, and 10 is gone.
            (300, 14, true),
            (300, 10, false),
        ];
        for (ms, seq, allowed) in cases {
            assert_eq!(log.allow(seq, 4, at(ms)), allowed, "seq {seq} at {ms} ms");
        }
    }

    #[test]
    fn get_mut_sees_only_the_stored_packet() {
        let mut history = RtpHistory::new(4);
        history.insert(10, 'a');
        history.insert(14, 'b'); // same slot as 10 in a ring of 4
        assert_eq!(history.get_mut(10), None);
        if let Some(p) = history.get_mut(14) {
            *p = 'c';
        }
        assert_eq!(history.get(14), Some(&'c'));
    }
}
