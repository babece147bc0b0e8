//! The codecs the test clients offer, with the payload types the shards use too.

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec};

use super::media::VIDEO_CLOCK;

pub(crate) const PT_OPUS: u8 = 111;
pub(crate) const PT_VP8: u8 = 96;
pub(crate) const PT_RTX: u8 = 97;

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn vp8() -> RTCRtpCodec {
    let rtcp_feedback = [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect();
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: VIDEO_CLOCK,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback,
    }
}
