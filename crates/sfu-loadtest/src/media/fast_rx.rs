//! A subscriber's own receive path for media, beside the `rtc` stack.
//!
//! Handing each datagram to the stack costs several microseconds: ICE, DTLS and SRTP stages,
//! the interceptor chain and the endpoint each queue and copy the packet. That, not the server,
//! capped what one harness core could receive. So once DTLS is done a subscriber opens its media
//! itself, with an SRTP context made from the keys the handshake derived (`sfu_srtp`), and
//! answers it with its own chain of the library's receive-side interceptors: transport-cc
//! feedback, NACKs and receiver reports, configured like a browser. The stack keeps STUN, DTLS,
//! RTCP and any RTP stream it has not announced yet; those packets reach the same chain through
//! the stack, so the server sees one consistent set of feedback either way.
//!
//! Retransmissions and bandwidth probes come on RTX streams (RFC 4588), paired with their media
//! streams in the offer's `a=ssrc-group:FID` lines. Like a browser, the subscriber reports each
//! RTX packet in its transport-cc feedback and unwraps the original packet it carries.

use bytes::Bytes;
use rtc::interceptor::{
    AttributedPacket, Interceptor, NackGeneratorBuilder, Packet as ChainPacket, RTCPFeedback, RTPHeaderExtension,
    ReceiverReportBuilder, Registry, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder,
};
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::marshal::{MarshalSize, Unmarshal};
use rtc::srtp::context::Context;
use sfu_srtp::SrtpKeys;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::peer::{PT_RTX, PT_VP8};
use super::synth::{AUDIO_CLOCK, VIDEO_CLOCK};

pub use sfu_proto::rtp_extensions::TRANSPORT_CC as TRANSPORT_CC_URI;
/// How often feedback goes out: Chrome reports transport-cc about every 50-100 ms.
const TWCC_INTERVAL: Duration = Duration::from_millis(100);
/// Browser-like NACKing: every 100 ms, at most 10 times per missing packet (the library default
/// re-asks forever, which is not what a browser does).
const NACK_INTERVAL: Duration = Duration::from_millis(100);
const MAX_NACKS_PER_PACKET: u16 = 10;

/// What became of a datagram offered to [`FastRx::open`].
pub enum Opened {
    /// Media on an announced stream, opened. A packet that comes twice (a retransmission of
    /// one that was not lost) is opened twice: the subscriber counts it as a duplicate.
    Media(rtc::rtp::Packet),
    /// A packet on an RTX stream, and the original it carries (None when it carries none).
    Rtx { rtx: rtc::rtp::Packet, original: Option<rtc::rtp::Packet> },
    /// Not ours to open: the stack handles it.
    ToStack(
        /// Why, when opening was tried and failed (the fast path is then switched off).
        Option<String>,
    ),
}

pub struct FastRx {
    /// Opens the server's media once the handshake is done.
    srtp: Option<Context>,
    /// Whether a packet was ever opened (a failure before that means the keys are wrong).
    proven: bool,
    /// SSRCs the stack announced as tracks: only these are opened here, so each SSRC has one
    /// SRTP context at a time (the stack's until announced, then this one).
    announced: HashSet<u32>,
    /// RTX SSRC -> the media SSRC it repairs, from the offers.
    rtx: HashMap<u32, u32>,
    feedback: Box<dyn Interceptor>,
    bound: HashSet<u32>,
    twcc_ext: Option<u8>,
}

impl FastRx {
    /// `twcc_ext` is the transport-cc extension id the server's offer chose.
    pub fn new(twcc_ext: Option<u8>, probe: bool) -> Self {
        let mut registry = Registry::new()
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().with_interval(TWCC_INTERVAL).build())
            .with(
                Slot::NackGenerator,
                NackGeneratorBuilder::new()
                    .with_interval(NACK_INTERVAL)
                    .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                    .build(),
            );
        if probe {
            registry = registry.with(Slot::Custom(super::tap::PROBE_SLOT), super::tap::FeedbackProbe::default());
        }
        Self {
            srtp: None,
            proven: false,
            announced: HashSet::new(),
            rtx: HashMap::new(),
            feedback: Box::new(registry.build()),
            bound: HashSet::new(),
            twcc_ext,
        }
    }

    /// Takes the server's keys (the remote direction of the handshake just completed).
    pub fn adopt(&mut self, keys: &SrtpKeys) -> Result<(), String> {
        self.srtp = Some(keys.context()?);
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.srtp.is_some()
    }

    /// The stack announced a track on `ssrc`: its packets are opened here from now on.
    pub fn announce(&mut self, ssrc: u32) {
        self.announced.insert(ssrc);
    }

    /// Learns the RTX streams an offer pairs with its media streams.
    pub fn learn_rtx(&mut self, sdp: &str) {
        self.rtx.extend(rtx_pairs(sdp));
    }

    /// Opens `datagram` if it is media on an announced stream or on an RTX stream.
    pub fn open(&mut self, datagram: &[u8]) -> Opened {
        let Some(srtp) = self.srtp.as_mut() else { return Opened::ToStack(None) };
        if !is_rtp(datagram) {
            return Opened::ToStack(None);
        }
        let Ok(header) = Header::unmarshal(&mut &datagram[..]) else { return Opened::ToStack(None) };
        let repairs = self.rtx.get(&header.ssrc).copied();
        if repairs.is_none() && !self.announced.contains(&header.ssrc) {
            return Opened::ToStack(None);
        }
        match srtp.decrypt_rtp_with_header(datagram, &header) {
            Ok(plain) => {
                self.proven = true;
                let plain: Bytes = plain.freeze();
                let mut end = plain.len();
                if header.padding {
                    let pad = usize::from(plain.last().copied().unwrap_or(0));
                    end = end.saturating_sub(pad);
                }
                let start = header.marshal_size().min(end);
                let packet = rtc::rtp::Packet { payload: plain.slice(start..end), header };
                match repairs {
                    Some(media_ssrc) => Opened::Rtx { original: unwrap_rtx(&packet, media_ssrc), rtx: packet },
                    None => Opened::Media(packet),
                }
            }
            Err(e) if self.proven => Opened::ToStack(Some(e.to_string())),
            Err(e) => {
                // Never opened anything: these are not the server's keys. The stack keeps
                // every stream.
                self.srtp = None;
                Opened::ToStack(Some(format!("fast receive path off: {e}")))
            }
        }
    }

    /// Records a received media packet (from either path) for feedback.
    pub fn observe(&mut self, packet: rtc::rtp::Packet, now: Instant) {
        let ssrc = packet.header.ssrc;
        if self.bound.insert(ssrc) {
            self.feedback.bind_remote_stream(&self.stream_info(ssrc, packet.header.payload_type));
        }
        self.feed(ChainPacket::Rtp(packet), now);
    }

    /// Records RTCP the stack delivered (sender reports, for the receiver reports' round trip).
    pub fn observe_rtcp(&mut self, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) {
        self.feed(ChainPacket::Rtcp(packets), now);
    }

    fn feed(&mut self, packet: ChainPacket, now: Instant) {
        let message =
            TaggedPacket { now, transport: TransportContext::default(), message: AttributedPacket::new(packet) };
        let _ = self.feedback.handle_read(message);
        while self.feedback.poll_read().is_some() {}
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.feedback.handle_timeout(now);
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.feedback.poll_timeout()
    }

    /// The next RTCP the chain wants sent.
    pub fn poll_feedback(&mut self) -> Option<Vec<Box<dyn rtc::rtcp::Packet>>> {
        while let Some(out) = self.feedback.poll_write() {
            if let ChainPacket::Rtcp(packets) = out.message.packet {
                return Some(packets);
            }
        }
        None
    }

    /// What the chain needs to know of a stream: clock rate, the transport-cc id, and for video
    /// that NACKs are wanted.
    fn stream_info(&self, ssrc: u32, payload_type: u8) -> StreamInfo {
        let video = payload_type == PT_VP8;
        StreamInfo {
            ssrc,
            payload_type,
            clock_rate: if video || payload_type == PT_RTX { VIDEO_CLOCK } else { AUDIO_CLOCK },
            rtp_header_extensions: self
                .twcc_ext
                .map(|id| RTPHeaderExtension { uri: TRANSPORT_CC_URI.into(), id: id.into() })
                .into_iter()
                .collect(),
            rtcp_feedback: if video {
                vec![
                    RTCPFeedback { typ: "nack".into(), parameter: String::new() },
                    RTCPFeedback { typ: "nack".into(), parameter: "pli".into() },
                ]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }
}

/// The original packet inside an RTX packet: its sequence number is the first two bytes of the
/// payload. Header extensions are left out, so the transport-cc sequence number is counted once
/// (on the RTX packet) and the chain's NACKs and reports see the original as received.
fn unwrap_rtx(rtx: &rtc::rtp::Packet, media_ssrc: u32) -> Option<rtc::rtp::Packet> {
    let osn = rtx.payload.get(..2)?;
    let header = Header {
        version: 2,
        marker: rtx.header.marker,
        payload_type: PT_VP8,
        sequence_number: u16::from_be_bytes([osn[0], osn[1]]),
        timestamp: rtx.header.timestamp,
        ssrc: media_ssrc,
        ..Default::default()
    };
    Some(rtc::rtp::Packet { header, payload: rtx.payload.slice(2..) })
}

/// `(rtx, media)` SSRC pairs from an SDP's `a=ssrc-group:FID <media> <rtx>` lines.
pub fn rtx_pairs(sdp: &str) -> Vec<(u32, u32)> {
    sdp.lines()
        .filter_map(|line| {
            let mut ssrcs =
                line.trim_end().strip_prefix("a=ssrc-group:FID ")?.split_whitespace().map(str::parse::<u32>);
            let (Some(Ok(media)), Some(Ok(rtx))) = (ssrcs.next(), ssrcs.next()) else { return None };
            Some((rtx, media))
        })
        .collect()
}

/// RTP, not RTCP (RFC 5761: RTCP packet types 192-223 sit where RTP has marker + payload type).
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12 && (128..192).contains(&datagram[0]) && !(192..224).contains(&datagram[1])
}

/// The transport-cc extension id in an SDP (the server's offer), if it has one.
pub fn twcc_ext_id(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, uri) = rest.split_once(' ')?;
        (uri.split_whitespace().next()? == TRANSPORT_CC_URI).then(|| id.split('/').next()?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    use rtc::shared::marshal::Marshal;
    use sfu_srtp::SrtpProfile;

    const TWCC_ID: u8 = 3;

    fn keys(byte: u8) -> SrtpKeys {
        SrtpKeys { profile: SrtpProfile::AeadAes128Gcm, master_key: vec![byte; 16], master_salt: vec![byte ^ 0x55; 12] }
    }

    /// A protected packet as the server sends it: transport-cc extension, then payload.
    fn seal(server: &mut Context, payload_type: u8, ssrc: u32, seq: u16, twcc: u16, payload: Vec<u8>) -> Vec<u8> {
        let mut header = Header {
            version: 2,
            payload_type,
            sequence_number: seq,
            timestamp: 90 * u32::from(seq),
            ssrc,
            ..Default::default()
        };
        header.extension = true;
        header.extension_profile = rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE;
        header.set_extension(TWCC_ID, Bytes::copy_from_slice(&twcc.to_be_bytes())).unwrap();
        let packet = rtc::rtp::Packet { header, payload: Bytes::from(payload) };
        server.encrypt_rtp(&packet.marshal().unwrap()).unwrap().to_vec()
    }

    /// A video packet with 100 payload bytes.
    fn sealed(server: &mut Context, ssrc: u32, seq: u16, twcc: u16) -> Vec<u8> {
        seal(server, PT_VP8, ssrc, seq, twcc, vec![seq as u8; 100])
    }

    fn feedback_until(rx: &mut FastRx, now: Instant) -> Vec<Box<dyn rtc::rtcp::Packet>> {
        rx.handle_timeout(now);
        let mut all = Vec::new();
        while let Some(mut packets) = rx.poll_feedback() {
            all.append(&mut packets);
        }
        all
    }

    #[test]
    fn opens_announced_media_and_leaves_the_rest_to_the_stack() {
        let mut server = keys(7).context().unwrap();
        let mut rx = FastRx::new(Some(TWCC_ID), false);
        let first = sealed(&mut server, 42, 100, 1);
        assert!(matches!(rx.open(&first), Opened::ToStack(None)), "no keys yet");
        rx.adopt(&keys(7)).unwrap();
        assert!(matches!(rx.open(&first), Opened::ToStack(None)), "not announced yet");
        rx.announce(42);
        let second = sealed(&mut server, 42, 101, 2);
        match rx.open(&second) {
            Opened::Media(p) => {
                assert_eq!((p.header.ssrc, p.header.sequence_number), (42, 101));
                assert_eq!(&p.payload[..], &[101u8; 100][..]);
            }
            _ => panic!("announced media is opened"),
        }
        assert!(matches!(rx.open(&second), Opened::Media(_)), "the same packet twice: a duplicate to count");
        let mut rtcp = second.clone();
        rtcp[1] = 200;
        assert!(matches!(rx.open(&rtcp), Opened::ToStack(None)), "RTCP stays with the stack");
        assert!(matches!(rx.open(&sealed(&mut server, 43, 5, 3)), Opened::ToStack(None)), "another SSRC");
    }

    #[test]
    fn wrong_keys_switch_the_path_off() {
        let mut server = keys(7).context().unwrap();
        let mut rx = FastRx::new(Some(TWCC_ID), false);
        rx.adopt(&keys(9)).unwrap();
        rx.announce(42);
        assert!(matches!(rx.open(&sealed(&mut server, 42, 1, 1)), Opened::ToStack(Some(_))));
        assert!(!rx.is_open());
    }

    #[test]
    fn answers_with_transport_cc_and_nacks() {
        let mut server = keys(7).context().unwrap();
        let mut rx = FastRx::new(Some(TWCC_ID), false);
        rx.adopt(&keys(7)).unwrap();
        rx.announce(42);
        let t0 = Instant::now();
        // Sequence 3 never arrives.
        for (i, seq) in [1u16, 2, 4, 5].into_iter().enumerate() {
            let Opened::Media(p) = rx.open(&sealed(&mut server, 42, seq, seq)) else { panic!("opened") };
            rx.observe(p, t0 + Duration::from_millis(i as u64));
        }
        let sent = feedback_until(&mut rx, t0 + Duration::from_millis(250));
        let cc: Vec<_> = sent.iter().filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>()).collect();
        assert!(!cc.is_empty(), "transport-cc feedback went out");
        assert_eq!(cc[0].base_sequence_number, 1);
        assert_eq!(cc[0].packet_status_count, 5, "1 to 5, with 3 reported missing");
        assert_eq!(cc[0].recv_deltas.len(), 4);
        let nacked: Vec<u16> = sent
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
            .flat_map(|n| n.nacks.iter().flat_map(|pair| pair.packet_list()))
            .collect();
        assert!(nacked.contains(&3), "the missing packet is NACKed: {nacked:?}");
    }

    /// An RTX packet as the server sends it: the original's sequence number, then its payload.
    fn sealed_rtx(server: &mut Context, ssrc: u32, seq: u16, original_seq: u16, twcc: u16) -> Vec<u8> {
        let mut payload = original_seq.to_be_bytes().to_vec();
        payload.extend_from_slice(&[original_seq as u8; 100]);
        seal(server, PT_RTX, ssrc, seq, twcc, payload)
    }

    #[test]
    fn unwraps_rtx_and_reports_it_once() {
        let mut server = keys(7).context().unwrap();
        let mut rx = FastRx::new(Some(TWCC_ID), false);
        rx.adopt(&keys(7)).unwrap();
        rx.announce(42);
        rx.learn_rtx("a=ssrc-group:FID 42 4242\r\na=ssrc:42 cname:x\r\n");
        let t0 = Instant::now();
        // Media 1 and 3 arrive; 2 is lost and comes back on the RTX stream as transport seq 3.
        for (twcc, seq) in [(1u16, 1u16), (2, 3)] {
            let Opened::Media(p) = rx.open(&sealed(&mut server, 42, seq, twcc)) else { panic!("opened") };
            rx.observe(p, t0);
        }
        let Opened::Rtx { rtx: carrier, original } = rx.open(&sealed_rtx(&mut server, 4242, 500, 2, 3)) else {
            panic!("RTX opened")
        };
        let original = original.expect("carries a packet");
        assert_eq!(
            (original.header.ssrc, original.header.sequence_number, original.header.payload_type),
            (42, 2, PT_VP8)
        );
        assert_eq!(&original.payload[..], &[2u8; 100][..]);
        assert!(original.header.extensions.is_empty(), "transport-cc is counted on the RTX packet only");
        rx.observe(carrier, t0 + Duration::from_millis(1));
        rx.observe(original, t0 + Duration::from_millis(1));
        let sent = feedback_until(&mut rx, t0 + Duration::from_millis(250));
        let cc: Vec<_> = sent.iter().filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>()).collect();
        assert_eq!(cc[0].packet_status_count, 3);
        assert_eq!(cc[0].recv_deltas.len(), 3, "every transport sequence number arrived, the RTX one too");
        let nacked = sent.iter().filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>()).count();
        assert_eq!(nacked, 0, "the repaired packet is not NACKed");
    }

    #[test]
    fn pairs_rtx_with_media_from_the_offer() {
        let sdp = "a=ssrc-group:FID 1454265503 712411883\r\na=ssrc-group:SIM 1 2 3\r\na=ssrc-group:FID 7\r\n";
        assert_eq!(rtx_pairs(sdp), vec![(712411883, 1454265503)]);
    }

    #[test]
    fn finds_the_transport_cc_id() {
        let sdp = "v=0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n";
        assert_eq!(twcc_ext_id(sdp), Some(3));
        assert_eq!(
            twcc_ext_id(
                "a=extmap:5/sendrecv http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            ),
            Some(5)
        );
        assert_eq!(twcc_ext_id("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid"), None);
    }

    #[test]
    fn tells_rtp_from_rtcp() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 96;
        assert!(is_rtp(&rtp));
        rtp[1] = 200; // a sender report
        assert!(!is_rtp(&rtp));
        assert!(!is_rtp(&[0x16, 0xfe, 0xfd])); // DTLS
    }
}
