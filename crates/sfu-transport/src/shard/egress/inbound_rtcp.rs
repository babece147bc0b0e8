//! A subscriber's RTCP, opened by the shard itself.
//!
//! A subscriber sends a few dozen RTCP datagrams a second (transport-cc feedback every 50 ms,
//! receiver reports, NACKs), all about what the shard sends it. Through the `rtc` stack each
//! one crosses the ICE handler, the interceptor chain, queues between pipeline stages and a
//! lookup of the track its first report names, before it comes back out as a message: with
//! hundreds of subscribers that was a tenth of a shard's time. Once DTLS is done, the shard
//! opens these datagrams with the remote side's SRTCP keys and parses them directly. STUN and
//! DTLS still go to the stack, so ICE consent and liveness are unchanged.
//!
//! The keys come from watching the handshake (see `sfu_srtp`). If they fail to open the first
//! datagrams the stack would have opened, they are given up and the stack reads this
//! connection's RTCP as before, so a wrong guess costs speed, never feedback.

use rtc::rtcp::Packet;
use rtc::srtp::context::Context;
use sfu_srtp::SrtpKeys;

/// Datagrams that fail to open before any has opened, after which the keys are given up.
const FAILURES_BEFORE_GIVING_UP: u32 = 8;

/// Whether a datagram is RTCP (RFC 5761 4; RFC 7983 for the rest of the demultiplexing):
/// version 2, and a packet type in RTCP's range (200-206 today, 192-223 reserved for it).
pub(crate) fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// Why an RTCP datagram was not read here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RtcpRejected {
    /// Authentication or replay check failed, or the datagram is too short for SRTCP.
    Unopened,
    /// It opened, but the RTCP inside does not parse.
    Malformed,
}

pub(crate) struct InboundRtcp {
    context: Context,
    opened_any: bool,
    failures: u32,
}

impl InboundRtcp {
    pub fn new(remote: &SrtpKeys) -> Result<Self, String> {
        Ok(Self { context: remote.receiving_context()?, opened_any: false, failures: 0 })
    }

    /// Opens and parses one SRTCP datagram.
    pub fn open(&mut self, datagram: &[u8]) -> Result<Vec<Box<dyn Packet>>, RtcpRejected> {
        let Ok(plain) = self.context.decrypt_rtcp(datagram) else {
            self.failures = self.failures.saturating_add(1);
            return Err(RtcpRejected::Unopened);
        };
        self.opened_any = true;
        rtc::rtcp::packet::unmarshal(&mut plain.freeze()).map_err(|_| RtcpRejected::Malformed)
    }

    /// Whether these keys have shown themselves wrong: nothing opened, and several failed.
    pub fn given_up(&self) -> bool {
        !self.opened_any && self.failures >= FAILURES_BEFORE_GIVING_UP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::marshal::Marshal;
    use sfu_srtp::SrtpProfile;

    fn keys(profile: SrtpProfile, key_byte: u8) -> SrtpKeys {
        SrtpKeys { profile, master_key: vec![key_byte; 16], master_salt: vec![9; profile.rtc().salt_len()] }
    }

    fn compound() -> Vec<u8> {
        let packets: Vec<Box<dyn Packet>> = vec![
            Box::new(ReceiverReport { ssrc: 11, ..Default::default() }),
            Box::new(PictureLossIndication { sender_ssrc: 11, media_ssrc: 4242 }),
        ];
        rtc::rtcp::packet::marshal(&packets).unwrap().to_vec()
    }

    #[test]
    fn tells_rtcp_from_rtp_stun_and_dtls() {
        let rtcp = compound();
        assert!(is_rtcp(&rtcp));
        let rtp = rtc::rtp::Packet {
            header: rtc::rtp::header::Header { version: 2, payload_type: 96, ssrc: 1, ..Default::default() },
            payload: bytes::Bytes::from_static(&[0; 20]),
        };
        assert!(!is_rtcp(&rtp.marshal().unwrap()));
        assert!(!is_rtcp(&[0x00, 0x01, 0, 8, 0x21, 0x12, 0xa4, 0x42])); // STUN
        assert!(!is_rtcp(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0])); // DTLS
        assert!(!is_rtcp(&rtcp[..4]));
    }

    #[test]
    fn opens_what_the_subscriber_protected_with_either_profile() {
        for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
            let mut subscriber = keys(profile, 3).context().unwrap();
            let mut inbound = InboundRtcp::new(&keys(profile, 3)).unwrap();
            let sealed = subscriber.encrypt_rtcp(&compound()).unwrap();
            let packets = inbound.open(&sealed).unwrap();
            assert_eq!(packets.len(), 2, "{profile:?}");
            let pli = packets[1].as_any().downcast_ref::<PictureLossIndication>().unwrap();
            assert_eq!(pli.media_ssrc, 4242);
            // The same datagram again is a replay.
            assert_eq!(inbound.open(&sealed).unwrap_err(), RtcpRejected::Unopened);
            assert!(!inbound.given_up(), "one opened: the keys are right");
        }
    }

    #[test]
    fn wrong_keys_are_given_up_and_garbage_is_refused() {
        let profile = SrtpProfile::AeadAes128Gcm;
        let mut subscriber = keys(profile, 3).context().unwrap();
        let mut inbound = InboundRtcp::new(&keys(profile, 4)).unwrap();
        for round in 0..FAILURES_BEFORE_GIVING_UP {
            assert!(!inbound.given_up(), "round {round}");
            let sealed = subscriber.encrypt_rtcp(&compound()).unwrap();
            assert_eq!(inbound.open(&sealed).unwrap_err(), RtcpRejected::Unopened);
        }
        assert!(inbound.given_up());
        let mut right = InboundRtcp::new(&keys(profile, 3)).unwrap();
        for garbage in [&[0x80u8, 200, 0, 1][..], &[0x80, 200, 0, 1, 0, 0, 0, 0], &[0x80; 64]] {
            assert_eq!(right.open(garbage).unwrap_err(), RtcpRejected::Unopened);
        }
    }
}
