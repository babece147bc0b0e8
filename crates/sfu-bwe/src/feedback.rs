//! The estimator's inputs in plain types: what was sent, and what the receiver reported.
//!
//! These are deliberately not RTCP types: the transport converts its TWCC packets into a
//! [`TransportFeedback`] (base sequence number plus one optional arrival time per packet), so this
//! crate depends on nothing.

use std::time::{Duration, Instant};

/// One packet handed to the socket, reported by the egress right after sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// The transport-wide sequence number stamped in the packet's header extension.
    pub transport_seq: u16,
    /// Size on the wire that the bottleneck sees (RTP header + payload + padding; SRTP tag included
    /// if known). Only relative sizes matter much, so the RTP size is good enough.
    pub size: usize,
    /// When it left.
    pub at: Instant,
    /// The probe cluster this packet belongs to (from [`crate::ProbeCluster::id`]), if any.
    pub probe_cluster: Option<u32>,
}

/// A transport-wide congestion control report, converted by the transport.
///
/// `arrivals[i]` is about the packet with sequence number `base_seq + i` (wrapping): `Some(t)` when
/// it arrived at time `t` on the receiver's clock (any epoch, only differences are used), `None`
/// when the receiver reports it as not received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportFeedback {
    /// Sequence number of the first packet the report covers.
    pub base_seq: u16,
    /// One entry per consecutive sequence number from `base_seq`.
    pub arrivals: Vec<Option<Duration>>,
}

impl TransportFeedback {
    /// Iterate `(sequence number, arrival)` over the report.
    pub fn packets(&self) -> impl Iterator<Item = (u16, Option<Duration>)> + '_ {
        self.arrivals.iter().enumerate().map(|(i, a)| (self.base_seq.wrapping_add(i as u16), *a))
    }
}

/// A sent packet matched with its report: the unit every inner component consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketResult {
    /// Extended (never wrapping) transport sequence number.
    pub seq: u64,
    pub size: usize,
    pub sent_at: Instant,
    pub probe_cluster: Option<u32>,
    /// Arrival on the receiver's clock; `None` if reported lost.
    pub arrival: Option<Duration>,
}

/// Extends 16-bit sequence numbers to 64 bits, picking the value closest to the last one seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqUnwrapper {
    last: Option<u64>,
}

impl SeqUnwrapper {
    /// Unwrap `seq` and remember it as the new reference if it moved forward.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let ext = self.peek(seq);
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }

    /// Unwrap `seq` against the reference without moving it.
    pub fn peek(&self, seq: u16) -> u64 {
        let Some(last) = self.last else {
            // Start in the second cycle so a slightly older first report cannot go negative.
            return (1 << 16) + seq as u64;
        };
        let delta = seq.wrapping_sub(last as u16) as i16 as i64;
        (last as i64 + delta).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_table() {
        // (inputs, expected extended values)
        let cases: &[(&[u16], &[u64])] = &[
            (&[0, 1, 2], &[65536, 65537, 65538]),
            (&[65534, 65535, 0, 1], &[131070, 131071, 131072, 131073]),
            (&[10, 5, 11], &[65546, 65541, 65547]),
            (&[1, 65535], &[65537, 65535]),
            (&[0, 32767, 65534], &[65536, 98303, 131070]),
        ];
        for (inputs, expected) in cases {
            let mut u = SeqUnwrapper::default();
            let got: Vec<u64> = inputs.iter().map(|s| u.unwrap(*s)).collect();
            assert_eq!(&got[..], *expected, "inputs {inputs:?}");
        }
    }

    #[test]
    fn feedback_iterates_with_wrap() {
        let fb = TransportFeedback { base_seq: 65535, arrivals: vec![Some(Duration::from_millis(1)), None] };
        let v: Vec<_> = fb.packets().collect();
        assert_eq!(v, vec![(65535, Some(Duration::from_millis(1))), (0, None)]);
    }
}
