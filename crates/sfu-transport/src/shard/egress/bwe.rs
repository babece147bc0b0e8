//! Send-side bandwidth estimation of one subscriber connection: every RTP packet we send gets a
//! transport-wide sequence number, and the subscriber's transport-cc feedback is matched against
//! them by `sfu-bwe`. The estimate is shared among the connection's tracks by sfu-core's
//! allocator; probe bursts (RTX copies of recent packets) test for headroom before an up-switch.

use rtc::rtcp::transport_feedbacks::transport_layer_cc::{PacketStatusChunk, SymbolTypeTcc, TransportLayerCc};
use rtc::rtp::header::Extension;
use rtc::shared::marshal::MarshalSize;
use sfu_bwe::{Bitrate, BweConfig, ProbeConfig, ProbePacer, SendSideBwe, SentPacket, TransportFeedback};
use sfu_core::Allocator;
use std::time::{Duration, Instant};

/// The estimate before any feedback. Higher than a cold video call's usual 300 kbit/s: a
/// subscriber mostly sits on a LAN or broadband link, and the initial probes (3x, 6x) then
/// reach the top layer of a simulcast track in their first round.
pub const SUBSCRIBER_START_BITRATE: Bitrate = Bitrate::kbps(1_000);

/// How long after video starts flowing the estimate is left to find its level (initial probes
/// and their feedback) before it caps anything. Until then tracks flow as the subscriber asked;
/// the first allocation then places each on the best layer that fits.
pub const SETTLE_TIME: Duration = Duration::from_millis(1_500);

/// Length of a probe burst. Longer than the estimator's default: an access link's token bucket
/// passes a short burst at line rate, so a 30 ms probe "succeeds" on a link far slower than its
/// target (a 600 kbit/s tbf with a 4 KB bucket passes a 1.7 Mbit/s probe of 30 ms in full) and
/// the next up-switch lands in congestion. 100 ms outlasts such buckets.
pub const PROBE_DURATION: Duration = Duration::from_millis(100);

/// Every 16-bit sequence number, big-endian, back to back: the extension payload of any packet
/// is a static slice of this, so stamping allocates nothing.
static SEQ_BYTES: [u8; 2 * 65536] = {
    let mut table = [0u8; 2 * 65536];
    let mut seq = 0;
    while seq < 65536 {
        table[2 * seq] = (seq >> 8) as u8;
        table[2 * seq + 1] = seq as u8;
        seq += 1;
    }
    table
};

pub(crate) struct EgressBwe {
    pub estimator: SendSideBwe,
    next_seq: u16,
    /// The extension id the subscriber negotiated; None until it answered (or if it declined
    /// transport-cc, in which case there is no estimate beyond REMB).
    pub extension_id: Option<u8>,
    pub allocator: Allocator,
    /// The probe burst being sent, if any.
    pub pacer: Option<ProbePacer>,
    /// Where the next probe looks for a packet to copy (counts back from the newest).
    pub probe_cursor: u16,
    /// When allocation starts (set once video flows: [`SETTLE_TIME`] later).
    pub allocate_from: Option<Instant>,
    /// Allocation is due at the next timeout (the estimate or the tracks changed).
    pub allocation_due: bool,
}

impl EgressBwe {
    pub fn new(now: Instant) -> Self {
        Self {
            // No initial probes yet: they copy video packets, and none flow before video starts.
            estimator: SendSideBwe::new(Self::config(false), now),
            next_seq: 0,
            extension_id: None,
            allocator: Allocator::new(),
            pacer: None,
            probe_cursor: 0,
            allocate_from: None,
            allocation_due: false,
        }
    }

    fn config(initial_probes: bool) -> BweConfig {
        BweConfig {
            start_bitrate: SUBSCRIBER_START_BITRATE,
            probe: ProbeConfig { initial: initial_probes, duration: PROBE_DURATION, ..ProbeConfig::default() },
            ..BweConfig::default()
        }
    }

    /// The first video packet went out: estimate afresh from here (the initial probes copy
    /// recent video packets, which only exist now), and allocate once the estimate settled.
    pub fn on_video_started(&mut self, now: Instant) {
        if self.allocate_from.is_none() {
            self.estimator = SendSideBwe::new(Self::config(true), now);
            self.allocate_from = Some(now + SETTLE_TIME);
        }
    }

    /// Whether the allocator's decisions apply yet.
    pub fn is_allocating(&self, now: Instant) -> bool {
        self.allocate_from.is_some_and(|from| now >= from)
    }

    /// Stamps the next transport-wide sequence number on `packet` and records its departure,
    /// as part of the probe burst under way, if any. Does nothing when the subscriber did not
    /// negotiate transport-cc.
    pub fn stamp(&mut self, packet: &mut rtc::rtp::Packet, now: Instant, probe: bool) {
        let Some(id) = self.extension_id else { return };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let at = 2 * usize::from(seq);
        let payload = bytes::Bytes::from_static(&SEQ_BYTES[at..at + 2]);
        packet.header.extensions.retain(|e| e.id != id);
        packet.header.extensions.push(Extension { id, payload });
        packet.header.extension = true;
        packet.header.extension_profile = 0xBEDE;
        // A padding-only probe packet is all header and padding; media is counted by its payload.
        let size = if packet.header.padding { packet.marshal_size() } else { 12 + 8 + packet.payload.len() };
        let probe_cluster = self.pacer.as_mut().map(|pacer| {
            if !probe {
                pacer.on_media_sent(size);
            }
            pacer.cluster_id()
        });
        self.estimator.on_packet_sent(SentPacket { transport_seq: seq, size, at: now, probe_cluster });
    }

    pub fn on_transport_cc(&mut self, feedback: &TransportLayerCc, now: Instant) {
        self.estimator.on_feedback(&to_feedback(feedback), now);
        let stats = self.estimator.stats();
        if stats.feedback_reports.is_multiple_of(32) {
            tracing::debug!(?stats, "subscriber bandwidth estimate");
        }
    }

    pub fn on_remb(&mut self, bitrate_bps: f32, now: Instant) {
        if bitrate_bps.is_finite() && bitrate_bps > 0.0 {
            self.estimator.on_remb(Bitrate::bps(bitrate_bps as u64), now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let allocation = match self.allocate_from {
            Some(from) if self.allocation_due => Some(from),
            _ => self.allocator.poll_timeout(),
        };
        [self.estimator.poll_timeout(), self.pacer.as_ref().map(ProbePacer::poll_timeout), allocation]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.estimator.handle_timeout(now);
    }
}

/// Expands a transport-cc report into one arrival (or loss) per sequence number. Arrivals are on
/// the receiver's clock: reference time (64 ms units) plus the running sum of deltas.
pub(crate) fn to_feedback(cc: &TransportLayerCc) -> TransportFeedback {
    let count = usize::from(cc.packet_status_count);
    let mut symbols = Vec::with_capacity(count);
    for chunk in &cc.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(run) => {
                let n = usize::from(run.run_length).min(count.saturating_sub(symbols.len()));
                symbols.extend(std::iter::repeat_n(run.packet_status_symbol, n));
            }
            PacketStatusChunk::StatusVectorChunk(vector) => {
                let n = vector.symbol_list.len().min(count.saturating_sub(symbols.len()));
                symbols.extend_from_slice(&vector.symbol_list[..n]);
            }
        }
    }
    let mut clock_us = i64::from(cc.reference_time) * 64_000;
    let mut deltas = cc.recv_deltas.iter();
    let arrivals = symbols
        .into_iter()
        .map(|symbol| match symbol {
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta => {
                clock_us += deltas.next().map_or(0, |d| d.delta);
                Some(Duration::from_micros(clock_us.max(0) as u64))
            }
            SymbolTypeTcc::PacketNotReceived | SymbolTypeTcc::PacketReceivedWithoutDelta => None,
        })
        .collect();
    TransportFeedback { base_seq: cc.base_sequence_number, arrivals }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{RecvDelta, RunLengthChunk, StatusVectorChunk};

    #[test]
    fn expands_runs_and_vectors_with_running_arrival_clock() {
        let cc = TransportLayerCc {
            base_sequence_number: 65534,
            packet_status_count: 5,
            reference_time: 1,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 2,
                    ..Default::default()
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedLargeDelta,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        // Padding symbols beyond the status count are ignored.
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                    ],
                    ..Default::default()
                }),
            ],
            recv_deltas: [1000, 250, -500, 750, 9999]
                .into_iter()
                .map(|delta| RecvDelta { type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta, delta })
                .collect(),
            ..Default::default()
        };
        let fb = to_feedback(&cc);
        assert_eq!(fb.base_seq, 65534);
        let us = |v: u64| Some(Duration::from_micros(v));
        assert_eq!(fb.arrivals, vec![us(65_000), us(65_250), None, us(64_750), us(65_500)]);
        let seqs: Vec<u16> = fb.packets().map(|(s, _)| s).collect();
        assert_eq!(seqs, vec![65534, 65535, 0, 1, 2]);
    }

    #[test]
    fn stamps_consecutive_sequence_numbers_big_endian_across_the_wrap() {
        let now = Instant::now();
        let mut bwe = EgressBwe::new(now);
        let mut packet = rtc::rtp::Packet::default();
        bwe.stamp(&mut packet, now, false);
        assert!(packet.header.extensions.is_empty(), "no transport-cc negotiated: nothing stamped");
        bwe.extension_id = Some(5);
        bwe.next_seq = 0xFFFE;
        let mut seen = Vec::new();
        for _ in 0..3 {
            bwe.stamp(&mut packet, now, false);
            assert_eq!(packet.header.extensions.len(), 1, "re-stamping replaces the old value");
            assert_eq!(packet.header.extensions[0].id, 5);
            seen.push(packet.header.extensions[0].payload.to_vec());
        }
        assert_eq!(seen, vec![vec![0xFF, 0xFE], vec![0xFF, 0xFF], vec![0x00, 0x00]]);
    }

    #[test]
    fn truncated_report_yields_what_it_has() {
        let cc = TransportLayerCc {
            packet_status_count: 100,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                run_length: 3,
                ..Default::default()
            })],
            recv_deltas: vec![],
            ..Default::default()
        };
        assert_eq!(to_feedback(&cc).arrivals.len(), 3);
    }
}
