//! One peer connection on a shard, with what the shard knows about it.

use bytes::Bytes;
use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpSenderId;
use sfu_core::{AllocationDecision, ResendLog, RtpHistory, Vp8Rewrite};
use sfu_proto::{ParticipantId, TrackSource};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::consent::Consent;
use super::egress::{EgressBwe, InboundRtcp, Outbound};
use super::uplink::RepairExtensionIds;
use crate::TrackKey;
use crate::peer_factory::Direction;

pub(crate) struct Conn {
    pub owner: ParticipantId,
    pub direction: Direction,
    pub pc: RTCPeerConnection,
    /// ICE validated a new client address: the selected ICE pair may have changed.
    pub path_changed: bool,
    pub connected: bool,
    /// Whether the client is still there (RFC 7675), from everything authenticated it sends.
    pub consent: Consent,
    /// Consent lapsed while connected: a word from the client reconnects it.
    pub reconnect_on_word: bool,
    /// The deadline this connection is filed under in the shard's timer set.
    pub deadline: Option<Instant>,
    /// Queued for draining at the next flush.
    pub dirty: bool,
    /// Publisher side: the "data" channel the client opened.
    pub data_channel: Option<RTCDataChannelId>,
    /// Publisher side: tracks by the rtc stack's track id, then by SSRC once seen.
    pub ingress_tracks: HashMap<String, TrackKey>,
    pub ingress_ssrcs: HashMap<u32, (TrackKey, u8)>,
    /// Publisher side: mid -> track, so a re-offer keeps existing tracks.
    pub published_mids: HashMap<String, TrackKey>,
    /// Publisher side: the header extensions that name an RTX packet's layer, once negotiated.
    pub repair_ids: Option<RepairExtensionIds>,
    /// Publisher side: RTX SSRC -> the SSRC of the layer it repairs, learned from repaired rids.
    pub repair_ssrcs: HashMap<u32, u32>,
    /// Publisher side: when packets missing on its uplink are next due to be NACKed.
    pub uplink_nack_at: Option<Instant>,
    /// Subscriber side: the tracks it receives. Each one's down track lives in the track's
    /// fan-out (`Fanout`), beside its forwarder, where the per-packet path finds it.
    pub subscribed: Vec<TrackKey>,
    /// Subscriber side: the bandwidth estimate of this connection.
    pub bwe: Option<EgressBwe>,
    /// Publisher side: when a dynacast pause of one of its tracks is due.
    pub dynacast_deadline: Option<Instant>,
    /// Subscriber side: the SRTP context and path its media is written on, once DTLS is done.
    pub outbound: Option<Outbound>,
    /// Subscriber side: its RTCP, opened by the shard once DTLS is done.
    pub inbound_rtcp: Option<InboundRtcp>,
    /// Subscriber side: when its next RTCP sender reports are due.
    pub sender_report_at: Option<Instant>,
}

impl Conn {
    pub fn new(owner: ParticipantId, direction: Direction, pc: RTCPeerConnection, now: Instant) -> Self {
        Self {
            owner,
            direction,
            pc,
            path_changed: false,
            connected: false,
            consent: Consent::new(now),
            reconnect_on_word: false,
            deadline: None,
            dirty: false,
            data_channel: None,
            ingress_tracks: HashMap::new(),
            ingress_ssrcs: HashMap::new(),
            published_mids: HashMap::new(),
            repair_ids: None,
            repair_ssrcs: HashMap::new(),
            uplink_nack_at: None,
            subscribed: Vec::new(),
            bwe: None,
            dynacast_deadline: None,
            outbound: None,
            inbound_rtcp: None,
            sender_report_at: None,
        }
    }
}

/// A forwarded packet as the subscriber got it, kept to answer its NACKs: what its header had
/// beyond the stream's own SSRC and payload type, and where its payload is in the track's
/// shared ring ([`super::egress::Fanout`]). Small and free of references, because every
/// subscriber writes one per copy sent.
#[derive(Clone, Copy)]
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
    /// The allocator's last decision applied to the forwarder.
    pub allocation: Option<AllocationDecision>,
}

impl DownTrack {
    /// Whether the copy sent as `seq` may be re-sent now; if so, records it.
    pub fn allow_resend(&mut self, seq: u16, now: Instant) -> bool {
        self.resends.allow(seq, self.history.capacity(), now)
    }
}

/// An RTX (RFC 4588) stream: its own SSRC, payload type and sequence numbers.
pub(crate) struct RtxStream {
    pub ssrc: u32,
    pub payload_type: u8,
    pub next_seq: u16,
}

/// The client's address on the ICE pair the stack selected, if it selected one.
pub(crate) fn selected_remote(pc: &mut RTCPeerConnection) -> Option<SocketAddr> {
    let sender = pc.get_senders().next()?;
    let sender = pc.rtp_sender(sender)?;
    let pair = sender.transport()?.ice_transport().get_selected_candidate_pair()?;
    let ip = pair.remote().address.parse().ok()?;
    Some(SocketAddr::new(ip, pair.remote().port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::shared::marshal::Marshal;

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
}
