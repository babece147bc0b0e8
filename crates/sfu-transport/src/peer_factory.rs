//! Building the sans-IO peer connections the shards drive: ICE-lite with credentials we choose
//! (so the first STUN packet can be routed by its username), mDNS off, a host candidate on the
//! shard's socket (and a passive TCP one on the node's ICE-TCP port), and a fixed codec set so
//! payload types match across publishers and subscribers.

use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::{SctpMaxMessageSize, SettingEngineBuilder};
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::MediaError;
use crate::feedback_interceptor::FeedbackToApplication;
use crate::read_filter::ReadOnly;
use crate::repair_tap::RepairTap;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use sfu_proto::rtp_extensions;
use sfu_srtp::KeyNotingProvider;

/// Chain position of the interceptors this crate adds ([`FeedbackToApplication`] on subscriber
/// connections, [`RepairTap`] on publisher ones): after every built-in interceptor.
const FEEDBACK_SLOT: usize = 20_000;

/// Payload types are fixed so a packet's type can be carried over between connections when
/// the browser accepts our numbers (it usually does); egress still remaps by mime type.
/// The largest data-channel message a client may send, as the publisher answer's
/// `a=max-message-size` tells it. The server relays each message to the room inside a JSON
/// envelope, binary as base64 (4/3 the size), so what it may accept is smaller than what it can
/// send: 32 KiB of binary becomes under 44 KB of envelope, well within [`DATA_SEND_MAX_BYTES`].
pub const DATA_MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// The largest data-channel message the server sends (an envelope): the limit its SCTP stack
/// is configured with, and RFC 8841's default, which every browser accepts. The stack sends at
/// most the smaller of this and the client's own `a=max-message-size`.
pub const DATA_SEND_MAX_BYTES: usize = 64 * 1024;

pub const PT_OPUS: u8 = 111;
pub const PT_VP8: u8 = 96;
pub const PT_H264: u8 = 102;
/// RTX (RFC 4588) for VP8 and H.264 on subscriber connections: the carrier of bandwidth probes
/// and retransmissions.
pub const PT_RTX_VP8: u8 = 97;
pub const PT_RTX_H264: u8 = 103;

/// ICE credentials of one connection; the ufrag is also its routing key on the shard socket.
#[derive(Clone, Debug)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

/// Hex digits at the start of a ufrag that name the shard owning the connection.
const UFRAG_SHARD_DIGITS: usize = 4;

impl IceCredentials {
    /// Fresh credentials for a connection on shard `shard`: the ufrag starts with the shard's
    /// index in four hex digits, then 12 random characters; the password is 32 random ones.
    /// The node's ICE-TCP listener reads the shard from a new connection's first STUN request
    /// ([`shard_of_ufrag`]) without asking anyone. The stack keeps these credentials across ICE
    /// restarts (it restarts with the ones it was built with), so the prefix holds for the
    /// connection's life.
    pub fn for_shard(shard: usize) -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        let mut rng = rand::rng();
        let random = Alphanumeric.sample_string(&mut rng, 12);
        Self { ufrag: format!("{shard:04x}{random}"), pwd: Alphanumeric.sample_string(&mut rng, 32) }
    }
}

/// The shard a ufrag of ours names ([`IceCredentials::for_shard`]), if it is one of ours in
/// form. Whether a connection has that ufrag is for the shard to say.
pub fn shard_of_ufrag(ufrag: &str) -> Option<usize> {
    let digits = ufrag.get(..UFRAG_SHARD_DIGITS)?;
    if ufrag.len() <= UFRAG_SHARD_DIGITS || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    usize::from_str_radix(digits, 16).ok()
}

/// The host candidates a shard's connections announce.
#[derive(Clone, Copy, Debug)]
pub struct LocalCandidates {
    /// The shard's UDP socket, at its announced address.
    pub udp: SocketAddr,
    /// The node's ICE-TCP port at the same address, when it has one.
    pub tcp: Option<SocketAddr>,
}

/// A passive TCP host candidate's priority (RFC 8445 section 5.1.2.1 formula): type preference
/// 90, below UDP host's 126, so a client that can use both keeps UDP (as libwebrtc ranks its own
/// TCP host candidates); local preference as RFC 6544 section 4.2 recommends for a passive host
/// candidate on a single address (direction 4, other 8191); component 1.
pub const TCP_PASSIVE_PRIORITY: u32 = (90 << 24) + (((4 << 13) + 8191) << 8) + (256 - 1);

/// Whether the connection carries a client's own media in, or everyone else's media out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect()
}

fn media_engine(direction: Direction, estimate: bool) -> Result<MediaEngine, MediaError> {
    let mut engine = MediaEngine::default();
    let codecs = [
        (MIME_TYPE_OPUS, 48000, 2, "minptime=10;useinbandfec=1", PT_OPUS, RtpCodecKind::Audio),
        (MIME_TYPE_VP8, 90000, 0, "", PT_VP8, RtpCodecKind::Video),
        (
            MIME_TYPE_H264,
            90000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            PT_H264,
            RtpCodecKind::Video,
        ),
    ];
    for (mime, clock_rate, channels, fmtp, pt, kind) in codecs {
        let rtcp_feedback = if kind == RtpCodecKind::Video { video_feedback() } else { vec![] };
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.into(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp.into(),
                    rtcp_feedback,
                },
                payload_type: pt,
            },
            kind,
        )?;
    }
    if direction == Direction::Egress && estimate {
        // We stamp transport-wide sequence numbers ourselves and estimate from the feedback.
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            engine.register_feedback(RTCPFeedback { typ: "transport-cc".into(), parameter: String::new() }, kind);
            engine.register_header_extension(
                RTCRtpHeaderExtensionCapability { uri: rtp_extensions::TRANSPORT_CC.into() },
                kind,
                None,
            )?;
        }
    }
    // Egress: RTX lets us send probe bursts made of recent packets again: each RTX packet has
    // its own sequence number, so the browser's SRTP accepts it, counts it in its feedback, and
    // then discards it as a duplicate.
    // Ingress: a publisher answered with RTX resends what we NACK on its own stream, whose
    // fresh sequence numbers the SRTP replay window never refuses however late the repair.
    if direction == Direction::Ingress || estimate {
        for (pt, apt) in [(PT_RTX_VP8, PT_VP8), (PT_RTX_H264, PT_H264)] {
            engine.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_RTX.into(),
                        clock_rate: 90000,
                        channels: 0,
                        sdp_fmtp_line: format!("apt={apt}"),
                        rtcp_feedback: vec![],
                    },
                    payload_type: pt,
                },
                RtpCodecKind::Video,
            )?;
        }
    }
    if direction == Direction::Ingress {
        configure_simulcast_extension_headers(&mut engine)?;
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: rtp_extensions::AUDIO_LEVEL.into() },
            RtpCodecKind::Audio,
            None,
        )?;
    }
    Ok(engine)
}

/// Builds a peer connection announcing `local` (the shard socket's public address, and the
/// node's ICE-TCP port) as its host candidates. With `estimate_bandwidth`, an egress connection
/// negotiates transport-cc.
pub fn build_peer_connection(
    direction: Direction,
    credentials: &IceCredentials,
    local: LocalCandidates,
    estimate_bandwidth: bool,
    now: Instant,
) -> Result<RTCPeerConnection, MediaError> {
    let mut engine = media_engine(direction, estimate_bandwidth)?;
    let mut registry = Registry::new();
    if direction == Direction::Ingress {
        // Transport-wide feedback to the publishing browser lets its own estimator ramp up to
        // the top simulcast layer and tells it about loss.
        registry = configure_twcc_receiver_only(registry, &mut engine)?;
        // Losses on the publisher's uplink are NACKed here; egress retransmissions are ours
        // (sfu-core's history), so no NACK responder is registered.
        //
        // No receiver reports to publishers: a browser stops sending the mid/rid header
        // extensions of a stream once a receiver report acknowledges it, and the rtc stack forgets
        // which SSRC is which simulcast layer on every renegotiation and can only re-learn it
        // from those extensions. Without reports they stay on every packet (about 12 bytes), so
        // an ICE restart or an added track keeps the simulcast video. Loss and delay still reach
        // the publisher's estimator through transport-cc feedback, and NACKs repair losses.
        //
        // The NACKs are the shard's own (sfu_core::UplinkNacks), not the stack's generator: that
        // one never learns of a packet repaired on an RTX stream it cannot place, and asks for it
        // again and again. RTX packets the stack cannot place come out through the repair tap.
        registry = registry.with(Slot::Custom(FEEDBACK_SLOT), ReadOnly::<RepairTap>::default());
    }
    if direction == Direction::Egress {
        // No report interceptors: the shard writes the media itself, so it sends the sender
        // reports too (shard::egress::reports).
        // Just before the chain's end, where unvouched RTCP is dropped.
        registry = registry.with(Slot::Custom(FEEDBACK_SLOT), ReadOnly::<FeedbackToApplication>::default());
    }

    let mut settings = SettingEngineBuilder::new();
    if direction == Direction::Egress {
        // The shard protects this connection's media itself (shard::egress::outbound) with the
        // keys this provider notes during the handshake; it tells apart only these two
        // profiles, which every browser offers (GCM first: a third of the cost per packet).
        settings = settings
            .with_crypto_provider(KeyNotingProvider::new().map_err(|e| MediaError::Rtc(e.to_string()))?)
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ]);
    }
    if direction == Direction::Ingress {
        // A publisher without RTX resends on the original sequence numbers; they must still be
        // accepted as late as the shard asks for them (sfu_core::MAX_NACK_DISTANCE).
        settings = settings.with_srtp_replay_protection_window(sfu_core::SRTP_REPLAY_WINDOW);
    }
    let settings = settings
        // No disconnected or failed state from the ICE agent: it counts only STUN, and clients
        // that check every 5 or 25 s flapped. The shard's consent timer counts everything the
        // client sends (shard::consent).
        .with_ice_timeouts(Some(Duration::ZERO), Some(Duration::ZERO), None)
        .with_lite(true)
        .with_ice_credentials(credentials.ufrag.clone(), credentials.pwd.clone())
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_answering_dtls_role(RTCDtlsRole::Server)
        // The SCTP stack advertises the same number it sends up to; the publisher answer then
        // advertises the smaller DATA_MAX_MESSAGE_BYTES instead (with_max_message_size).
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(DATA_SEND_MAX_BYTES as u32))
        .build();

    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)?;
    add_host_candidate(&mut pc, local.udp)?;
    if let Some(tcp) = local.tcp {
        add_tcp_host_candidate(&mut pc, tcp, TcpType::Passive, TCP_PASSIVE_PRIORITY)?;
    }
    Ok(pc)
}

/// Gives `pc` a UDP host candidate at `addr`.
pub(crate) fn add_host_candidate(
    pc: &mut RTCPeerConnection,
    addr: std::net::SocketAddr,
) -> Result<(), rtc::shared::error::Error> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)
}

/// Gives `pc` a TCP host candidate at `addr` (RFC 6544): the server's is passive (clients
/// connect to it); an active one stands for a client that connects out (its port is a
/// placeholder). `priority` 0 lets the stack compute it.
pub(crate) fn add_tcp_host_candidate(
    pc: &mut RTCPeerConnection,
    addr: std::net::SocketAddr,
    tcp_type: TcpType,
    priority: u32,
) -> Result<(), rtc::shared::error::Error> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "tcp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            priority,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)
}

/// Sets every `a=max-message-size` of `sdp` to `bytes`: what a client may send on its data
/// channels, smaller than what the server's SCTP stack would accept ([`DATA_MAX_MESSAGE_BYTES`]).
pub fn with_max_message_size(sdp: &str, bytes: usize) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=max-message-size:") {
            out.push_str(&format!("a=max-message-size:{bytes}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Raises the browser's initial send-bitrate guess for VP8 so a fresh publisher reaches its
/// top simulcast layer in seconds instead of ramping from ~300 kbit/s.
pub fn with_start_bitrate(sdp: &str, kbps: u32) -> String {
    let rtpmap = format!("a=rtpmap:{PT_VP8} ");
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with(&rtpmap) {
            out.push_str(&format!("a=fmtp:{PT_VP8} x-google-start-bitrate={kbps}\r\n"));
        }
    }
    out
}

#[cfg(test)]
mod max_message_size_tests {
    use super::with_max_message_size;

    #[test]
    fn only_the_max_message_size_line_changes() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\na=max-message-size:65536\r\na=mid:2\r\n";
        assert_eq!(
            with_max_message_size(sdp, 32768),
            "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:5000\r\na=max-message-size:32768\r\na=mid:2\r\n"
        );
        assert_eq!(with_max_message_size("v=0\r\n", 1), "v=0\r\n");
    }
}
