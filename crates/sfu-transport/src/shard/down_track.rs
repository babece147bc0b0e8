//! A published track as one subscriber receives it: its own stream (SSRC, payload type, RTX),
//! what was sent on it (to answer NACKs and write sender reports), and what the allocator needs.
//! It lives in the track's fan-out beside the subscriber's forwarder (see `egress::fanout`).

use bytes::Bytes;
use rtc::rtp_transceiver::RTCRtpSenderId;
use sfu_core::{AllocationDecision, ResendLog, RtpHistory, Vp8Rewrite};
use sfu_proto::{ParticipantId, TrackSource};
use std::time::Instant;

/// A forwarded packet as the subscriber got it, kept to answer its NACKs: what its header had
/// beyond the stream's own SSRC and payload type, and where its payload is in the track's
/// shared ring ([`super::egress::Fanout`]). Small and free of references, because every
/// subscriber writes one per copy sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentPacket {
    pub timestamp: u32,
    pub marker: bool,
    /// The payload's index in the track's packet ring.
    pub source: u32,
    /// The VP8 renumbering written into the payload on the way out.
    pub vp8: Option<Vp8Rewrite>,
}

// Two history slots to a cache line: the slot written per copy is the one cold line it costs.
const _: () = assert!(std::mem::size_of::<Option<(u64, SentPacket)>>() <= 32);

impl SentPacket {
    /// The packet as first sent, sequence number `seq`, on the stream `ssrc` / `payload_type`.
    pub fn to_packet(self, payload: &Bytes, seq: u16, ssrc: u32, payload_type: u8) -> rtc::rtp::Packet {
        let mut packet = rtc::rtp::Packet::default();
        self.write_to(&mut packet, payload, seq, ssrc, payload_type);
        packet
    }

    /// Rewrites `out` (a packet reused from copy to copy) into this one: the header fields a
    /// forwarded copy has, no extensions, and the publisher's payload.
    pub fn write_to(&self, out: &mut rtc::rtp::Packet, payload: &Bytes, seq: u16, ssrc: u32, payload_type: u8) {
        let header = &mut out.header;
        header.version = 2;
        header.marker = self.marker;
        header.payload_type = payload_type;
        header.sequence_number = seq;
        header.timestamp = self.timestamp;
        header.ssrc = ssrc;
        header.extension = false;
        header.extension_profile = 0;
        header.extensions.clear();
        out.payload = payload.clone();
    }
}

/// A published track as sent to one subscriber.
pub(crate) struct DownTrack {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub mime: String,
    /// The payload type the subscriber negotiated for this codec; None until it answered.
    pub payload_type: Option<u8>,
    /// Recently sent packets, by output sequence number, to answer NACKs.
    pub history: RtpHistory<SentPacket>,
    /// How often each NACKed packet was re-sent.
    pub resends: ResendLog,
    /// The output sequence number of the last packet forwarded, where probes start looking.
    pub last_seq: Option<u16>,
    pub last_sent_at: Option<Instant>,
    /// What sender reports tell about the stream: its clock, the newest frame's RTP timestamp
    /// with the instant its first packet went out (a large frame's later packets leave later,
    /// and must not move the mapping), and the packets and payload octets sent so far.
    pub clock_rate: u32,
    pub clock_anchor: Option<(u32, Instant)>,
    pub sent_packets: u32,
    pub sent_octets: u32,
    /// The RTX stream paired with this track, once the subscriber accepted it.
    pub rtx: Option<RtxStream>,
    /// What the allocator sees besides the forwarder's state (its track id is the `TrackKey`):
    /// the source and the size the subscriber renders the track at (pixels, 0 = unknown).
    pub source: TrackSource,
    pub rendered_area: u32,
    /// Who publishes the track (their speaking moves it up the allocator's order).
    pub publisher: ParticipantId,
    /// Who receives it: a room mix's frame carries a payload without their own voice for a
    /// speaker (`MediaPacket::payload_for`).
    pub listener: ParticipantId,
    /// The allocator's last decision applied to the forwarder.
    pub allocation: Option<AllocationDecision>,
}

/// What a down track decided about the sequence numbers one NACK asked for.
#[derive(Debug, Default)]
pub(crate) struct NackAnswer {
    /// To send again now, as first sent.
    pub resend: Vec<(u16, SentPacket)>,
    /// No longer in the history, or its payload left the track's ring.
    pub missed: u64,
    /// Re-sent too often or too recently already (`sfu_core::ResendGuard`).
    pub refused: u64,
}

impl DownTrack {
    /// The subscriber asks again for `seqs`. `payload_kept` says whether a payload is still in
    /// the track's ring (by the index the history holds). Each packet allowed is recorded as
    /// re-sent at `now`: the caller must send every one in `resend`.
    pub fn on_nack(
        &mut self,
        seqs: impl IntoIterator<Item = u16>,
        payload_kept: impl Fn(u32) -> bool,
        now: Instant,
    ) -> NackAnswer {
        let mut answer = NackAnswer::default();
        for seq in seqs {
            let Some(sent) = self.history.get(seq).copied().filter(|sent| payload_kept(sent.source)) else {
                answer.missed += 1;
                continue;
            };
            if !self.resends.allow(seq, self.history.capacity(), now) {
                answer.refused += 1;
                continue;
            }
            answer.resend.push((seq, sent));
        }
        answer
    }
}

/// An RTX (RFC 4588) stream: its own SSRC, payload type and sequence numbers.
pub(crate) struct RtxStream {
    pub ssrc: u32,
    pub payload_type: u8,
    pub next_seq: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::shared::marshal::Marshal;
    use std::time::Duration;

    /// A NACKed packet is rebuilt from the small history entry: it must go out exactly as the
    /// copy the subscriber lost.
    #[test]
    fn a_packet_rebuilt_from_history_is_the_one_first_sent() {
        let payload = bytes::Bytes::from_static(&[0x90, 0x80, 0x12, 0x34, 0x9d, 0x01, 0x2a]);
        let first = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: 4242,
                timestamp: 90_000,
                ssrc: 0xfeed,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        let sent = SentPacket { timestamp: 90_000, marker: true, source: 7, vp8: None };
        let rebuilt = sent.to_packet(&payload, 4242, 0xfeed, 96);
        assert_eq!(rebuilt.marshal().unwrap(), first.marshal().unwrap());
        assert_ne!(sent.to_packet(&payload, 4243, 0xfeed, 96).marshal().unwrap(), first.marshal().unwrap());
        // The shard's reused packet still carries the previous copy's transport-cc extension.
        let mut reused = sent.to_packet(&payload, 1, 0xbeef, 97);
        reused.header.set_extension(5, bytes::Bytes::from_static(&[0, 9])).unwrap();
        sent.write_to(&mut reused, &payload, 4242, 0xfeed, 96);
        assert_eq!(reused.marshal().unwrap(), first.marshal().unwrap());
    }

    fn down_track() -> DownTrack {
        DownTrack {
            sender: RTCRtpSenderId::default(),
            ssrc: 1,
            mime: "video/VP8".into(),
            payload_type: Some(96),
            history: RtpHistory::new(64),
            resends: ResendLog::default(),
            last_seq: None,
            last_sent_at: None,
            clock_rate: 90_000,
            clock_anchor: None,
            sent_packets: 0,
            sent_octets: 0,
            rtx: None,
            source: TrackSource::Camera,
            rendered_area: 0,
            publisher: ParticipantId("p".into()),
            listener: ParticipantId("s".into()),
            allocation: None,
        }
    }

    fn sent(source: u32) -> SentPacket {
        SentPacket { timestamp: 0, marker: false, source, vp8: None }
    }

    /// A NACK is answered from the history: what was sent and is still held is re-sent, at
    /// most 3 times and not twice within 40 ms; what is gone is a miss.
    #[test]
    fn a_nack_is_answered_from_the_history_within_the_resend_limits() {
        let t0 = Instant::now();
        let mut down = down_track();
        for seq in 10..20u16 {
            down.history.insert(seq, sent(u32::from(seq)));
        }
        // 15's payload left the ring; 30 was never sent.
        let kept = |source: u32| source != 15;
        let first = down.on_nack([11, 15, 30], kept, t0);
        assert_eq!(first.resend.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![11]);
        assert_eq!(first.resend[0].1.source, 11);
        assert_eq!((first.missed, first.refused), (2, 0));
        // Asked again at once: too soon.
        let again = down.on_nack([11], kept, t0 + Duration::from_millis(10));
        assert_eq!((again.resend.len(), again.refused), (0, 1));
        // Then twice more, 40 ms apart, and no more.
        let mut resent = 1;
        for i in 1..10u64 {
            resent += down.on_nack([11], kept, t0 + Duration::from_millis(50 * i)).resend.len();
        }
        assert_eq!(resent, 3);
    }
}
