//! Send history: remembers what was sent under which transport sequence number until a report
//! about it arrives, and turns reports into [`PacketResult`]s.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::feedback::{PacketResult, SentPacket, SeqUnwrapper, TransportFeedback};

/// Packets older than this are forgotten even if never reported: a report that late is useless
/// for delay estimation and would only cost memory.
const MAX_AGE: Duration = Duration::from_secs(10);
/// How long a packet reported lost, or passed over by the reports (sent before the receiver's
/// reports start, say), is kept in case a later report says it arrived after all.
const REPORT_GRACE: Duration = Duration::from_secs(1);
/// Hard cap on remembered packets (about 10 s at 5000 packets/s).
const MAX_ENTRIES: usize = 1 << 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    No,
    Lost,
    Received,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Bytes (a datagram's size fits; kept small, one entry is written per packet sent).
    size: u32,
    sent_at: Instant,
    probe_cluster: Option<u32>,
    reported: Reported,
}

/// The send-side record of transport-wide sequence numbers.
#[derive(Debug, Default)]
pub(crate) struct SendHistory {
    /// Extended sequence number of `entries[0]`.
    first_seq: u64,
    /// Consecutive entries; a sequence number never sent (a gap) holds `None`.
    entries: VecDeque<Option<Entry>>,
    unwrapper: SeqUnwrapper,
    /// The highest extended sequence number a report has covered.
    newest_reported: Option<u64>,
    /// Nothing can be pruned until after this (the oldest entry's deadline), unless a report
    /// comes first; `None`: look now. Spares each send a read of the oldest entry, which is
    /// long out of cache.
    prune_after: Option<Instant>,
}

impl SendHistory {
    /// Record a sent packet.
    pub fn on_sent(&mut self, p: &SentPacket) {
        let seq = self.unwrapper.unwrap(p.transport_seq);
        if self.entries.is_empty() {
            self.first_seq = seq;
        }
        if seq < self.first_seq {
            return; // older than anything kept: ignore
        }
        let idx = (seq - self.first_seq) as usize;
        let entry = Some(Entry {
            size: u32::try_from(p.size).unwrap_or(u32::MAX),
            sent_at: p.at,
            probe_cluster: p.probe_cluster,
            reported: Reported::No,
        });
        // Usually the next in line: one store, no placeholder written first.
        match idx.cmp(&self.entries.len()) {
            Ordering::Less => self.entries[idx] = entry,
            Ordering::Equal => self.entries.push_back(entry),
            Ordering::Greater => {
                self.entries.resize(idx, None);
                self.entries.push_back(entry);
            }
        }
        if self.entries.len() > MAX_ENTRIES || self.prune_after.is_none_or(|after| p.at > after) {
            self.prune(p.at);
        }
    }

    /// Match a report against the history. Each packet yields at most one result as received; a
    /// packet reported lost yields a lost result once, and a received result if a later report
    /// says it arrived after all. Unknown sequence numbers are ignored.
    pub fn on_feedback(&mut self, fb: &TransportFeedback) -> Vec<PacketResult> {
        self.prune_after = None;
        let mut out = Vec::with_capacity(fb.arrivals.len());
        for (seq16, arrival) in fb.packets() {
            let seq = self.unwrapper.peek(seq16);
            let Some(idx) = seq.checked_sub(self.first_seq) else {
                continue;
            };
            let Some(Some(e)) = self.entries.get_mut(idx as usize) else {
                continue;
            };
            self.newest_reported = self.newest_reported.max(Some(seq));
            let next = match (e.reported, arrival) {
                (Reported::Received, _) | (Reported::Lost, None) => continue,
                (_, Some(_)) => Reported::Received,
                (Reported::No, None) => Reported::Lost,
            };
            e.reported = next;
            out.push(PacketResult {
                seq,
                size: e.size as usize,
                sent_at: e.sent_at,
                probe_cluster: e.probe_cluster,
                arrival,
            });
        }
        out
    }

    /// Number of remembered sequence numbers (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets the oldest packets while nothing more can come of them: received ones as soon as
    /// they are reported, so the history spans about a round trip and stays in cache (a sender
    /// of thousands of streams writes one entry per packet).
    fn prune(&mut self, now: Instant) {
        self.prune_after = None;
        while let Some(front) = self.entries.front() {
            let passed_over = self.newest_reported.is_some_and(|newest| self.first_seq < newest);
            // When the front entry stops mattering; None: it already has.
            let kept_until = front.and_then(|e| match e.reported {
                Reported::Received => None,
                Reported::Lost => Some(e.sent_at + REPORT_GRACE),
                Reported::No if passed_over => Some(e.sent_at + REPORT_GRACE),
                Reported::No => Some(e.sent_at + MAX_AGE),
            });
            match kept_until {
                Some(until) if now <= until && self.entries.len() <= MAX_ENTRIES => {
                    self.prune_after = Some(until);
                    break;
                }
                _ => {
                    self.entries.pop_front();
                    self.first_seq += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(seq: u16, at: Instant) -> SentPacket {
        SentPacket { transport_seq: seq, size: 1000, at, probe_cluster: None }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn reports_each_packet_once() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for s in 0..4u16 {
            h.on_sent(&sent(s, t0 + ms(s as u64)));
        }
        let fb = TransportFeedback { base_seq: 0, arrivals: vec![Some(ms(50)), None, Some(ms(52))] };
        let r = h.on_feedback(&fb);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].arrival, None);
        // Same report again: nothing new.
        assert!(h.on_feedback(&fb).is_empty());
        // Packet 1 turns up late; packet 3 reported lost.
        let fb2 = TransportFeedback { base_seq: 1, arrivals: vec![Some(ms(60)), Some(ms(52)), None] };
        let r2 = h.on_feedback(&fb2);
        assert_eq!(r2.len(), 2);
        assert_eq!((r2[0].seq, r2[0].arrival), (65537, Some(ms(60))));
        assert_eq!((r2[1].seq, r2[1].arrival), (65539, None));
    }

    #[test]
    fn survives_wrap_and_ignores_unknown() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for (i, s) in [65534u16, 65535, 0, 1].iter().enumerate() {
            h.on_sent(&sent(*s, t0 + ms(i as u64)));
        }
        let fb = TransportFeedback { base_seq: 65535, arrivals: vec![Some(ms(1)); 5] };
        let r = h.on_feedback(&fb);
        // 65535, 0, 1 known; 2 and 3 never sent.
        assert_eq!(r.len(), 3);
        assert_eq!(r[2].seq - r[0].seq, 2);
    }

    #[test]
    fn prunes_old_entries() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        h.on_sent(&sent(0, t0));
        h.on_sent(&sent(1, t0 + MAX_AGE + ms(1)));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn forgets_reported_packets_but_keeps_a_lost_one_a_while() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for s in 0..4u16 {
            h.on_sent(&sent(s, t0 + ms(s as u64)));
        }
        let fb = TransportFeedback { base_seq: 0, arrivals: vec![Some(ms(10)), Some(ms(11))] };
        assert_eq!(h.on_feedback(&fb).len(), 2);
        h.on_sent(&sent(4, t0 + ms(20)));
        assert_eq!(h.len(), 3, "0 and 1 are reported: nothing more can come of them");
        // 2 is reported lost, 3 received: 2 stays, in case it turns up, and 3 behind it.
        let fb = TransportFeedback { base_seq: 2, arrivals: vec![None, Some(ms(30))] };
        assert_eq!(h.on_feedback(&fb).len(), 2);
        h.on_sent(&sent(5, t0 + ms(40)));
        assert_eq!(h.len(), 4);
        let late = TransportFeedback { base_seq: 2, arrivals: vec![Some(ms(45))] };
        assert_eq!(h.on_feedback(&late)[0].arrival, Some(ms(45)));
        h.on_sent(&sent(6, t0 + ms(50)));
        assert_eq!(h.len(), 3, "4, 5 and 6 are left");
        // A lost packet is given up after a while.
        let fb = TransportFeedback { base_seq: 4, arrivals: vec![None] };
        assert_eq!(h.on_feedback(&fb).len(), 1);
        h.on_sent(&sent(7, t0 + ms(60)));
        assert_eq!(h.len(), 4);
        h.on_sent(&sent(8, t0 + REPORT_GRACE + ms(61)));
        assert_eq!(h.len(), 4, "5 to 8: 4 was given up");
    }

    /// Packets a receiver never reports (sent before its reports start) must not hold every
    /// later packet in the history until they are old.
    #[test]
    fn gives_up_on_packets_the_reports_passed_over() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for s in 0..3u16 {
            h.on_sent(&sent(s, t0 + ms(s as u64)));
        }
        let fb = TransportFeedback { base_seq: 2, arrivals: vec![Some(ms(10))] };
        assert_eq!(h.on_feedback(&fb).len(), 1);
        h.on_sent(&sent(3, t0 + ms(20)));
        assert_eq!(h.len(), 4, "0 and 1 might still be reported");
        h.on_sent(&sent(4, t0 + REPORT_GRACE + ms(5)));
        assert_eq!(h.len(), 2, "3 and 4: 0 and 1 given up, 2 reported");
        // Unreported packets after the newest report are kept as long as ever.
        h.on_sent(&sent(5, t0 + REPORT_GRACE * 3));
        assert_eq!(h.len(), 3);
    }
}
