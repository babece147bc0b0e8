//! Which of a publisher's packets to ask for again (RFC 4585 generic NACK), for one incoming
//! stream, and which arrivals are repairs or duplicates.
//!
//! A packet is asked for as soon as a later one shows it missing, then again every
//! [`NACK_RETRY_INTERVAL`] until it arrives, [`MAX_NACKS_PER_PACKET`] requests were sent, it is
//! older than [`MAX_NACK_AGE`], or it fell [`MAX_NACK_DISTANCE`] packets behind the newest. The
//! last bound is what the publisher's packet can still be accepted at: a publisher without RTX
//! resends on the original sequence numbers, which the SRTP replay window refuses once they
//! are that far behind. Asking for what can no longer be taken only costs the publisher's
//! uplink.
//!
//! Arrivals are classified so a retransmission (whether it came on RTX or on the stream
//! itself) is forwarded once, and a packet that came twice is dropped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::seq::SeqUnwrapper;

/// How long to wait before asking for the same packet again: more than a publisher's uplink
/// round trip usually takes, less than a subscriber's jitter buffer waits.
pub const NACK_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Requests per missing packet before giving up.
pub const MAX_NACKS_PER_PACKET: u8 = 10;

/// A packet missing for longer is of no use to anyone watching live.
pub const MAX_NACK_AGE: Duration = Duration::from_secs(1);

/// How far behind the newest packet a missing one may be asked for. Equal to the ingress SRTP
/// replay window ([`SRTP_REPLAY_WINDOW`]), past which a resend on the same stream is refused.
pub const MAX_NACK_DISTANCE: u64 = SRTP_REPLAY_WINDOW as u64;

/// Packets the publisher connections' SRTP replay window spans: a second of a 1 Mbit/s layer,
/// so a retransmission without RTX is still accepted late.
pub const SRTP_REPLAY_WINDOW: usize = 1024;

/// A jump forward larger than this is a stream restart (or a hostile sequence number), not
/// loss: nothing in between is asked for.
pub const MAX_GAP: u64 = 512;

/// Missing packets remembered at once, whatever a publisher sends.
pub const MAX_MISSING: usize = 1024;

/// What an arriving packet is to the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next packet, or a later one (the ones skipped are now missing).
    New,
    /// A packet that was missing: a retransmission or a late one.
    Repaired,
    /// Already received (or too old to tell): not to be forwarded again.
    Duplicate,
}

#[derive(Clone, Copy, Debug)]
struct Missing {
    detected: Instant,
    /// When it may be asked for next.
    due: Instant,
    nacks: u8,
}

/// The received and missing packets of one incoming stream.
#[derive(Debug, Default)]
pub struct UplinkNacks {
    unwrapper: SeqUnwrapper,
    /// Received packets among the last `RECEIVED_BITS` sequence numbers, by extended number.
    received: Vec<u64>,
    missing: BTreeMap<u64, Missing>,
    /// Missing packets given up on so far (asked for too often, too long, or too far behind).
    given_up: u64,
}

/// Sequence numbers the received bitmap spans: enough to tell a duplicate within the window in
/// which packets are asked for again.
const RECEIVED_BITS: u64 = 2048;

impl UplinkNacks {
    /// A tracker that has seen no packet yet.
    pub fn new() -> Self {
        Self { received: vec![0; (RECEIVED_BITS / 64) as usize], ..Self::default() }
    }

    /// A packet with sequence number `seq` arrived.
    pub fn on_packet(&mut self, seq: u16, now: Instant) -> Arrival {
        let highest = self.unwrapper.highest();
        let extended = self.unwrapper.unwrap(seq);
        let Some(highest) = highest else {
            self.mark_received(extended);
            return Arrival::New;
        };
        if extended > highest {
            let gap = extended - highest - 1;
            if gap > MAX_GAP {
                // A restart: nothing before it is wanted, and the bitmap says nothing of it.
                self.restart();
            } else {
                for lost in highest + 1..extended {
                    self.clear_received(lost);
                    if self.missing.len() >= MAX_MISSING {
                        self.missing.pop_first();
                        self.given_up += 1;
                    }
                    self.missing.insert(lost, Missing { detected: now, due: now, nacks: 0 });
                }
            }
            self.mark_received(extended);
            self.forget_far_behind(extended);
            return Arrival::New;
        }
        if highest - extended >= RECEIVED_BITS {
            // Far behind anything the bitmap covers: the stream started over (a publisher
            // that reset its counter). Follow it from here.
            self.restart();
            self.unwrapper = SeqUnwrapper::new();
            let extended = self.unwrapper.unwrap(seq);
            self.mark_received(extended);
            return Arrival::New;
        }
        if self.is_received(extended) {
            return Arrival::Duplicate;
        }
        self.mark_received(extended);
        self.missing.remove(&extended);
        Arrival::Repaired
    }

    /// The sequence numbers to ask for now (oldest first), each counted as asked.
    pub fn poll_nacks(&mut self, now: Instant) -> Vec<u16> {
        let mut due = Vec::new();
        let mut expired = Vec::new();
        for (&seq, missing) in self.missing.iter_mut() {
            if now.saturating_duration_since(missing.detected) >= MAX_NACK_AGE || missing.nacks >= MAX_NACKS_PER_PACKET
            {
                expired.push(seq);
            } else if missing.due <= now {
                missing.nacks += 1;
                missing.due = now + NACK_RETRY_INTERVAL;
                due.push(seq as u16);
            }
        }
        for seq in expired {
            self.missing.remove(&seq);
            self.given_up += 1;
        }
        due
    }

    /// When [`Self::poll_nacks`] has something to do next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing
            .values()
            .map(|m| if m.nacks >= MAX_NACKS_PER_PACKET { m.due } else { m.due.min(m.detected + MAX_NACK_AGE) })
            .min()
    }

    /// Packets missing now.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// Missing packets given up on since the start.
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    fn restart(&mut self) {
        self.missing.clear();
        self.received.iter_mut().for_each(|w| *w = 0);
    }

    fn forget_far_behind(&mut self, newest: u64) {
        while let Some((&oldest, _)) = self.missing.first_key_value() {
            if newest - oldest < MAX_NACK_DISTANCE {
                break;
            }
            self.missing.pop_first();
            self.given_up += 1;
        }
    }

    fn bit(extended: u64) -> (usize, u64) {
        let index = extended % RECEIVED_BITS;
        ((index / 64) as usize, 1 << (index % 64))
    }

    fn mark_received(&mut self, extended: u64) {
        let (word, mask) = Self::bit(extended);
        self.received[word] |= mask;
    }

    fn clear_received(&mut self, extended: u64) {
        let (word, mask) = Self::bit(extended);
        self.received[word] &= !mask;
    }

    fn is_received(&self, extended: u64) -> bool {
        let (word, mask) = Self::bit(extended);
        self.received[word] & mask != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(nacks: &mut UplinkNacks, seqs: &[u16], now: Instant) -> Vec<Arrival> {
        seqs.iter().map(|s| nacks.on_packet(*s, now)).collect()
    }

    #[test]
    fn a_gap_is_asked_for_at_once_then_every_retry_interval() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        feed(&mut n, &[10, 11, 14], t0);
        assert_eq!(n.poll_timeout(), Some(t0));
        assert_eq!(n.poll_nacks(t0), vec![12, 13]);
        assert_eq!(n.poll_nacks(t0 + Duration::from_millis(50)), Vec::<u16>::new());
        assert_eq!(n.poll_timeout(), Some(t0 + NACK_RETRY_INTERVAL));
        assert_eq!(n.poll_nacks(t0 + NACK_RETRY_INTERVAL), vec![12, 13]);
    }

    #[test]
    fn arrivals_are_new_repaired_or_duplicate() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        let cases: &[(u16, Arrival)] = &[
            (100, Arrival::New),
            (103, Arrival::New),
            (101, Arrival::Repaired),
            (101, Arrival::Duplicate),
            (103, Arrival::Duplicate),
            (102, Arrival::Repaired),
            (104, Arrival::New),
            (100, Arrival::Duplicate),
            // Far behind everything: the publisher started its counter over.
            (60_000, Arrival::New),
            (60_001, Arrival::New),
            (60_000, Arrival::Duplicate),
        ];
        for (seq, expected) in cases {
            assert_eq!(n.on_packet(*seq, t0), *expected, "seq {seq}");
        }
        assert_eq!(n.missing(), 0);
        assert!(n.poll_nacks(t0).is_empty());
    }

    #[test]
    fn a_packet_is_given_up_after_max_requests_or_age() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        feed(&mut n, &[1, 3], t0);
        let mut asked = 0;
        let mut t = t0;
        while t < t0 + Duration::from_secs(5) {
            asked += n.poll_nacks(t).len();
            t += Duration::from_millis(10);
        }
        assert!(asked <= MAX_NACKS_PER_PACKET as usize, "asked {asked} times");
        assert!(asked >= 5, "asked only {asked} times within a second");
        assert_eq!(n.missing(), 0);
        assert_eq!(n.given_up(), 1);
        assert_eq!(n.poll_timeout(), None);
    }

    #[test]
    fn a_packet_too_far_behind_for_the_replay_window_is_not_asked_for() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        feed(&mut n, &[0, 2], t0);
        // 1 is missing; the window spans the newest packet and the 1023 before it.
        for seq in 3..=(MAX_NACK_DISTANCE as u16) {
            n.on_packet(seq, t0);
        }
        assert_eq!(n.missing(), 1, "still within the window");
        n.on_packet(MAX_NACK_DISTANCE as u16 + 1, t0);
        assert_eq!(n.missing(), 0);
        assert!(n.poll_nacks(t0).is_empty());
    }

    #[test]
    fn a_large_jump_is_a_restart_not_loss() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        feed(&mut n, &[1, 2], t0);
        assert_eq!(n.on_packet(2 + MAX_GAP as u16 + 2, t0), Arrival::New);
        assert_eq!(n.missing(), 0);
        assert!(n.poll_nacks(t0).is_empty());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        feed(&mut n, &[65534, 1], t0);
        assert_eq!(n.poll_nacks(t0), vec![65535, 0]);
        assert_eq!(n.on_packet(0, t0), Arrival::Repaired);
        assert_eq!(n.on_packet(65535, t0), Arrival::Repaired);
        assert_eq!(n.missing(), 0);
    }

    #[test]
    fn missing_packets_are_bounded_whatever_arrives() {
        let t0 = Instant::now();
        let mut n = UplinkNacks::new();
        let mut seq: u16 = 0;
        n.on_packet(seq, t0);
        for _ in 0..10_000 {
            seq = seq.wrapping_add(MAX_GAP as u16);
            n.on_packet(seq, t0);
            assert!(n.missing() <= MAX_MISSING);
        }
    }
}
