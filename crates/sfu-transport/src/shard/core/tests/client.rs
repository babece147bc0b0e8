//! In-memory clients: real `rtc` peer connections set up the way a browser's are (full ICE,
//! DTLS client, VP8 with RTX, NACK / PLI / transport-cc feedback), fed datagrams and time by the
//! harness. A publisher sends what `source` makes and notes the feedback the
//! shard sends it; a subscriber notes every packet it receives.

use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_RTX, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::codecs::{PT_OPUS, PT_RTX, PT_VP8, opus, vp8};
use super::media::{self, Origin, VIDEO_CLOCK};
use super::source::Source;
use crate::feedback_interceptor::FeedbackToApplication;
use crate::read_filter::ReadOnly;
use crate::remote::{Remote, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

/// An RTP packet the subscriber's stack handed over (RTX already unwrapped by the stack).
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u16,
    pub origin: Option<Origin>,
    pub keyframe: bool,
    pub payload: Bytes,
}

/// The clear RTP header of a datagram that reached the client (SRTP leaves it unencrypted):
/// shows what went over the wire, RTX included, before the stack unwraps anything.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u16,
    pub payload_type: u8,
}

/// Feedback that reached a publisher from the shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Feedback {
    KeyframeRequest { ssrc: u32 },
    Nack { ssrc: u32 },
}

pub(crate) struct Client {
    pub addr: SocketAddr,
    /// How it reaches the shards: its one candidate is of this transport.
    pub transport: Transport,
    pub pc: RTCPeerConnection,
    pub connected: bool,
    pub source: Option<Source>,
    pub received: Vec<Received>,
    pub arrivals: Vec<Arrival>,
    pub feedback: Vec<(Instant, Feedback)>,
    /// The subscriber's receivers by the SSRC they receive, to address its RTCP.
    receivers: HashMap<u32, RTCRtpReceiverId>,
    /// The last ICE check it sent, and where: replayed by tests that check a closed connection
    /// is no longer routed.
    pub last_check: Option<(SocketAddr, Bytes)>,
}

fn build_pc(role: Role, addr: SocketAddr, transport: Transport, now: Instant) -> RTCPeerConnection {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(RTCRtpCodecParameters { rtp_codec: opus(), payload_type: PT_OPUS }, RtpCodecKind::Audio)
        .unwrap();
    engine
        .register_codec(RTCRtpCodecParameters { rtp_codec: vp8(), payload_type: PT_VP8 }, RtpCodecKind::Video)
        .unwrap();
    let mut registry = Registry::new();
    match role {
        Role::Publisher => {
            configure_simulcast_extension_headers(&mut engine).unwrap();
            // PLIs and NACKs from the shard reach the application, where they are counted.
            registry = registry.with(Slot::Custom(20_000), ReadOnly::<FeedbackToApplication>::default());
        }
        Role::Subscriber => {
            let rtx = RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.into(),
                clock_rate: VIDEO_CLOCK,
                channels: 0,
                sdp_fmtp_line: format!("apt={PT_VP8}"),
                rtcp_feedback: vec![],
            };
            engine
                .register_codec(RTCRtpCodecParameters { rtp_codec: rtx, payload_type: PT_RTX }, RtpCodecKind::Video)
                .unwrap();
            // Transport-cc feedback from the stack's own recorder, on virtual arrival times.
            registry = configure_twcc_receiver_only(registry, &mut engine).unwrap();
        }
    }
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // As browsers do: DTLS client when answering the shard's (ICE-lite) offer.
        .with_answering_dtls_role(RTCDtlsRole::Client)
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    match transport {
        Transport::Udp => crate::peer_factory::add_host_candidate(&mut pc, addr).unwrap(),
        // As a browser offers it: active, port 9 (it connects from an ephemeral port, which the
        // harness stands for with the client's own address).
        Transport::Tcp => crate::peer_factory::add_tcp_host_candidate(
            &mut pc,
            SocketAddr::new(addr.ip(), 9),
            rtc::ice::tcp_type::TcpType::Active,
            0,
        )
        .unwrap(),
    }
    pc
}

impl Client {
    pub fn new(role: Role, addr: SocketAddr, transport: Transport, now: Instant) -> Self {
        Self {
            addr,
            transport,
            pc: build_pc(role, addr, transport, now),
            connected: false,
            source: None,
            received: Vec::new(),
            arrivals: Vec::new(),
            feedback: Vec::new(),
            receivers: HashMap::new(),
            last_check: None,
        }
    }

    /// Adds the camera (and the microphone) and returns the offer, with the camera's mid and
    /// the microphone's.
    pub fn offer(&mut self, with_audio: bool, now: Instant) -> (String, String, Option<String>) {
        let mut source = Source::add_tracks(&mut self.pc, with_audio);
        let offer = self.pc.create_offer(None).unwrap();
        self.pc.set_local_description(now, offer).unwrap();
        let (video, audio) = source.learn_mids(&mut self.pc);
        self.source = Some(source);
        (self.pc.local_description().unwrap().sdp, video, audio)
    }

    /// Applies the shard's answer to the publisher's offer.
    pub fn accept_answer(&mut self, sdp: String, now: Instant) {
        let answer = rtc::peer_connection::sdp::RTCSessionDescription::answer(sdp).unwrap();
        self.pc.set_remote_description(now, answer).unwrap();
        if let Some(source) = self.source.as_mut() {
            source.negotiated(&mut self.pc);
        }
    }

    /// Answers the shard's offer to a subscriber.
    pub fn answer(&mut self, offer: String, now: Instant) -> String {
        let offer = rtc::peer_connection::sdp::RTCSessionDescription::offer(offer).unwrap();
        self.pc.set_remote_description(now, offer).unwrap();
        let answer = self.pc.create_answer(None).unwrap();
        self.pc.set_local_description(now, answer).unwrap();
        self.pc.local_description().unwrap().sdp
    }

    /// A datagram from the network.
    pub fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        if let Some(arrival) = clear_rtp_header(datagram, now) {
            self.arrivals.push(arrival);
        }
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                transport_protocol: Remote { addr: from, transport: self.transport }.protocol(),
                ecn: None,
            },
            message: BytesMut::from(datagram),
        };
        let _ = self.pc.handle_read(message);
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let frame = self.source.as_ref().filter(|_| self.connected).and_then(Source::poll_timeout);
        [self.pc.poll_timeout(), frame].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|at| at <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        if let Some(source) = self.source.as_mut().filter(|_| self.connected) {
            source.send_due(&mut self.pc, now);
        }
    }

    /// Everything the stack has to say: datagrams to send (returned), events and messages
    /// (handled here).
    pub fn drain(&mut self, now: Instant) -> Vec<(Remote, Bytes)> {
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(datagram) = self.pc.poll_write() {
                progressed = true;
                let bytes = datagram.message.freeze();
                if crate::stun::is_stun(&bytes) {
                    self.last_check = Some((datagram.transport.peer_addr, bytes.clone()));
                }
                out.push((Remote::of(datagram.transport.peer_addr, datagram.transport.transport_protocol), bytes));
            }
            while let Some(event) = self.pc.poll_event() {
                progressed = true;
                self.on_event(event, now);
            }
            while let Some(message) = self.pc.poll_read() {
                progressed = true;
                self.on_message(message.message, message.now);
            }
            if !progressed {
                return out;
            }
        }
    }

    fn on_event(&mut self, event: RTCPeerConnectionEvent, now: Instant) {
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.connected = state == RTCPeerConnectionState::Connected;
                if let Some(source) = self.source.as_mut().filter(|_| self.connected) {
                    source.start(now);
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.receivers.insert(init.ssrc, init.receiver_id);
            }
            _ => {}
        }
    }

    fn on_message(&mut self, message: RTCMessage, at: Instant) {
        match message {
            RTCMessage::RtpPacket(_, packet) => self.received.push(Received {
                at,
                ssrc: packet.header.ssrc,
                seq: packet.header.sequence_number,
                origin: media::origin(&packet.payload),
                keyframe: media::is_keyframe(&packet.payload),
                payload: packet.payload,
            }),
            RTCMessage::RtcpPacket(_, packets) => {
                for packet in packets {
                    let any = packet.as_any();
                    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                        self.on_feedback(at, Feedback::KeyframeRequest { ssrc: pli.media_ssrc });
                    } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                        for entry in &fir.fir {
                            self.on_feedback(at, Feedback::KeyframeRequest { ssrc: entry.ssrc });
                        }
                    } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                        self.on_feedback(at, Feedback::Nack { ssrc: nack.media_ssrc });
                    }
                }
            }
            _ => {}
        }
    }

    fn on_feedback(&mut self, at: Instant, feedback: Feedback) {
        if let (Some(source), Feedback::KeyframeRequest { ssrc }) = (self.source.as_mut(), &feedback) {
            source.on_keyframe_request(*ssrc);
        }
        self.feedback.push((at, feedback));
    }

    /// Pauses or resumes encoding one layer of the camera.
    pub fn set_sending(&mut self, layer: usize, sending: bool) {
        self.source.as_mut().unwrap().set_sending(layer, sending);
    }

    /// Sends RTCP about the stream received as `ssrc` (a subscriber's feedback).
    pub fn send_rtcp(&mut self, ssrc: u32, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) {
        let receiver = self.receivers.get(&ssrc).copied().expect("no receiver for that SSRC");
        self.pc.rtp_receiver(receiver).unwrap().write_rtcp(now, packets).unwrap();
    }

    /// Sends RTCP about some stream it receives, if any; what its stack refuses is dropped. For
    /// a subscriber that sends whatever it likes (the shard's fuzz target).
    pub fn try_send_rtcp(&mut self, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) -> bool {
        let Some(receiver) = self.receivers.values().next().copied() else { return false };
        self.pc.rtp_receiver(receiver).is_some_and(|mut r| r.write_rtcp(now, packets).is_ok())
    }

    /// Sends one camera packet with the given header fields and payload, as a publisher that
    /// sends whatever it likes would (the shard's fuzz target).
    pub fn send_raw_rtp(&mut self, raw: super::source::RawRtp, now: Instant) -> bool {
        let Some(source) = self.source.as_mut() else { return false };
        source.send_raw(&mut self.pc, raw, now)
    }

    /// The layers received since `since`, in the order they started arriving.
    pub fn layers_since(&self, since: Instant) -> Vec<u8> {
        let mut layers = Vec::new();
        for r in self.received.iter().filter(|r| r.at >= since) {
            if let Some(o) = r.origin
                && layers.last() != Some(&o.layer)
            {
                layers.push(o.layer);
            }
        }
        layers
    }
}

/// The header of an (S)RTP datagram, which SRTP leaves in the clear; None for anything else
/// (STUN, DTLS, RTCP).
pub(crate) fn clear_rtp_header(datagram: &[u8], at: Instant) -> Option<Arrival> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 || (192..=223).contains(&datagram[1]) {
        return None;
    }
    Some(Arrival {
        at,
        ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        seq: u16::from_be_bytes([datagram[2], datagram[3]]),
        payload_type: datagram[1] & 0x7f,
    })
}
