//! Building the harness's peer connections on the sans-IO `rtc` core, configured the way a
//! browser would be: full ICE (the server is ICE-lite), one host candidate on the connection's
//! own UDP socket, mDNS off, Opus + VP8 (with RTX), NACK / PLI / transport-cc feedback, RTCP
//! reports.

use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{NackResponderBuilder, Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_sender_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::net::SocketAddr;
use std::time::Instant;

use super::synth::{AUDIO_CLOCK, LAYERS, VIDEO_CLOCK};
use super::tap::{DeliverRtcpTap, TAP_SLOT};

pub const PT_OPUS: u8 = 111;
pub const PT_VP8: u8 = 96;
pub const PT_RTX: u8 = 97;

const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);
const MAX_BINDING_REQUESTS: u16 = 400;

pub use sfu_proto::rtp_extensions::{MID as MID_URI, RID as RID_URI};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Subscriber,
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: AUDIO_CLOCK,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    let feedback = [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect();
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: VIDEO_CLOCK,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: feedback,
    }
}

fn rtx(apt: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RTX.into(),
        clock_rate: VIDEO_CLOCK,
        channels: 0,
        sdp_fmtp_line: format!("apt={apt}"),
        rtcp_feedback: vec![],
    }
}

pub fn build(role: Role, local: SocketAddr, now: Instant) -> anyhow::Result<RTCPeerConnection> {
    let mut engine = MediaEngine::default();
    engine.register_codec(RTCRtpCodecParameters { rtp_codec: opus(), payload_type: PT_OPUS }, RtpCodecKind::Audio)?;
    engine.register_codec(RTCRtpCodecParameters { rtp_codec: vp8(), payload_type: PT_VP8 }, RtpCodecKind::Video)?;
    let mut registry = Registry::new();
    match role {
        Role::Publisher => {
            registry = configure_rtcp_reports(registry);
            configure_simulcast_extension_headers(&mut engine)?;
            registry = configure_twcc_sender_only(registry, &mut engine)?;
            // The server NACKs what it lost on the way in; answer from a send history.
            registry = registry.with(Slot::NackResponder, NackResponderBuilder::new().build());
            registry = registry.with(Slot::Custom(TAP_SLOT), DeliverRtcpTap::keyframe_requests());
        }
        Role::Subscriber => {
            // Receiver reports, NACKs and transport-cc feedback come from the subscriber's own
            // chain (fast_rx), which sees every media packet; the stack sees only some. It
            // still negotiates transport-cc, and hands over the sender reports.
            register_transport_cc(&mut engine)?;
            // RTX for VP8, like a browser: the server's retransmissions and bandwidth probes
            // come as RTX, which fast_rx unwraps.
            engine.register_codec(
                RTCRtpCodecParameters { rtp_codec: rtx(PT_VP8), payload_type: PT_RTX },
                RtpCodecKind::Video,
            )?;
            registry = registry.with(Slot::Custom(TAP_SLOT), DeliverRtcpTap::sender_reports());
        }
    }

    let mut settings = SettingEngineBuilder::new();
    if role == Role::Subscriber {
        // Notes the SRTP keys as the handshake derives them, for fast_rx, which knows the two
        // 128-bit profiles (a peer such as Janus would otherwise pick AES-256).
        settings =
            settings.with_crypto_provider(sfu_srtp::KeyNotingProvider::new()?).with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ]);
    }
    let settings = settings
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // Check every 50 ms for up to 20 s, like a browser (the library default gives up after
        // 1.4 s): under load the server may apply the answer after the first checks arrive.
        .with_ice_connection_attempts(Some(CHECK_INTERVAL), Some(MAX_BINDING_REQUESTS))
        // Answer `a=setup:active` (DTLS client) as browsers do; the library would otherwise
        // answer passive to an ICE-lite offer.
        .with_answering_dtls_role(RTCDtlsRole::Client)
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)?;

    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
    Ok(pc)
}

/// What a publisher sends.
#[derive(Clone, Copy, Debug)]
pub struct PublishSpec {
    pub video: bool,
    pub audio: bool,
}

/// The publisher's senders and their SSRCs.
pub struct PublisherTracks {
    pub audio: Option<(RTCRtpSenderId, u32)>,
    pub video: Option<(RTCRtpSenderId, [u32; 3])>,
}

pub fn add_publisher_tracks(
    pc: &mut RTCPeerConnection,
    spec: PublishSpec,
    label: &str,
) -> anyhow::Result<PublisherTracks> {
    let stream = format!("{label}-stream");
    let mut tracks = PublisherTracks { audio: None, video: None };
    if spec.audio {
        let ssrc = rand::random::<u32>();
        let track = MediaStreamTrack::new(
            stream.clone(),
            format!("{label}-audio"),
            format!("{label}-audio"),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec: opus(),
                active: true,
                ..Default::default()
            }],
        );
        tracks.audio = Some((pc.add_track(track)?, ssrc));
    }
    if spec.video {
        let ssrcs: [u32; 3] = std::array::from_fn(|_| rand::random::<u32>());
        let encodings = LAYERS
            .iter()
            .zip(ssrcs)
            .map(|(layer, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: layer.rid.into(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: vp8(),
                active: true,
                max_bitrate: layer.kbps * 1000,
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new(
            stream,
            format!("{label}-video"),
            format!("{label}-video"),
            RtpCodecKind::Video,
            encodings,
        );
        tracks.video = Some((pc.add_track(track)?, ssrcs));
    }
    Ok(tracks)
}

/// The media section id of the transceiver carrying `sender`.
pub fn mid_of(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<String> {
    let transceivers: Vec<_> = pc.get_transceivers().collect();
    transceivers.into_iter().find_map(|t| {
        let transceiver = pc.rtp_transceiver(t)?;
        if transceiver.sender() == Some(sender) { transceiver.mid().clone() } else { None }
    })
}

/// Negotiated header extension id for `uri` on `sender`, and the negotiated payload type of
/// its codec.
pub fn sender_params(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
    mime: &str,
) -> (Option<u8>, Option<u8>, Option<u8>) {
    let Some(mut s) = pc.rtp_sender(sender) else { return (None, None, None) };
    let params = s.get_parameters();
    let ext = |uri: &str| params.rtp_parameters.header_extensions.iter().find(|h| h.uri == uri).map(|h| h.id as u8);
    let pt = params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type);
    (ext(MID_URI), ext(RID_URI), pt)
}

/// Offers transport-cc like a browser (the extension on every media section, and the feedback
/// type), without the stack's own feedback interceptor.
fn register_transport_cc(engine: &mut MediaEngine) -> anyhow::Result<()> {
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        engine.register_feedback(RTCPFeedback { typ: "transport-cc".into(), parameter: String::new() }, kind);
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: sfu_proto::rtp_extensions::TRANSPORT_CC.into() },
            kind,
            None,
        )?;
    }
    Ok(())
}
