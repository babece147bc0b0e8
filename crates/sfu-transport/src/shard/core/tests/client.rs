//! In-memory clients: real `rtc` peer connections set up the way a browser's are (full ICE,
//! DTLS client, VP8 with RTX, NACK / PLI / transport-cc feedback), fed datagrams and time by the
//! harness. A publisher sends synthetic simulcast VP8 (see `media`) and notes the feedback the
//! shard sends it; a subscriber notes every packet it receives.

use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::media::{self, FPS, LAYERS, Origin, VIDEO_CLOCK};
use crate::feedback_interceptor::FeedbackToApplication;
use crate::read_filter::ReadOnly;

pub(super) const PT_VP8: u8 = 96;
pub(super) const PT_RTX: u8 = 97;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Publisher,
    Subscriber,
}

/// An RTP packet the subscriber's stack handed over (RTX already unwrapped by the stack).
#[derive(Clone, Debug)]
pub(super) struct Received {
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
pub(super) struct Arrival {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u16,
    pub payload_type: u8,
}

/// Feedback that reached a publisher from the shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Feedback {
    KeyframeRequest { ssrc: u32 },
    Nack { ssrc: u32 },
}

/// What a publisher sends: three simulcast layers of synthetic VP8, keyframes at the start and
/// whenever the shard asks for one.
pub(super) struct Source {
    sender: RTCRtpSenderId,
    pub mid: String,
    pub ssrcs: [u32; 3],
    seqs: [u16; 3],
    /// Layers being encoded; a paused one sends nothing (as a browser does for dynacast).
    pub sending: [bool; 3],
    keyframe_wanted: [bool; 3],
    extensions: Option<(u8, u8)>,
    payload_type: u8,
    frame: u32,
    next_frame: Option<Instant>,
    pub packets_sent: [u64; 3],
}

pub(super) struct Client {
    pub addr: SocketAddr,
    pub role: Role,
    pub pc: RTCPeerConnection,
    pub connected: bool,
    pub closed: bool,
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

fn vp8() -> RTCRtpCodec {
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

fn build_pc(role: Role, addr: SocketAddr, now: Instant) -> RTCPeerConnection {
    let mut engine = MediaEngine::default();
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
    .new_candidate_host()
    .unwrap();
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().unwrap()).unwrap();
    pc
}

impl Client {
    pub fn new(role: Role, addr: SocketAddr, now: Instant) -> Self {
        Self {
            addr,
            role,
            pc: build_pc(role, addr, now),
            connected: false,
            closed: false,
            source: None,
            received: Vec::new(),
            arrivals: Vec::new(),
            feedback: Vec::new(),
            receivers: HashMap::new(),
            last_check: None,
        }
    }

    /// Adds the simulcast camera track and returns the offer.
    pub fn offer_simulcast(&mut self, now: Instant) -> String {
        let ssrcs: [u32; 3] = std::array::from_fn(|_| rand::random());
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
        let track =
            MediaStreamTrack::new("cam".into(), "cam-video".into(), "cam-video".into(), RtpCodecKind::Video, encodings);
        let sender = self.pc.add_track(track).unwrap();
        let offer = self.pc.create_offer(None).unwrap();
        self.pc.set_local_description(now, offer).unwrap();
        let mid = mid_of(&mut self.pc, sender).unwrap();
        self.source = Some(Source {
            sender,
            mid,
            ssrcs,
            seqs: std::array::from_fn(|_| rand::random()),
            sending: [true; 3],
            keyframe_wanted: [true; 3],
            extensions: None,
            payload_type: PT_VP8,
            frame: 0,
            next_frame: None,
            packets_sent: [0; 3],
        });
        self.pc.local_description().unwrap().sdp
    }

    /// Applies the shard's answer to the publisher's offer.
    pub fn accept_answer(&mut self, sdp: String, now: Instant) {
        let answer = rtc::peer_connection::sdp::RTCSessionDescription::answer(sdp).unwrap();
        self.pc.set_remote_description(now, answer).unwrap();
        let Some(source) = self.source.as_mut() else { return };
        let mut sender = self.pc.rtp_sender(source.sender).unwrap();
        let parameters = sender.get_parameters();
        let extension =
            |uri: &str| parameters.rtp_parameters.header_extensions.iter().find(|e| e.uri == uri).map(|e| e.id as u8);
        source.extensions = extension(sfu_proto::rtp_extensions::MID).zip(extension(sfu_proto::rtp_extensions::RID));
        source.payload_type = parameters
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
            .map(|c| c.payload_type)
            .unwrap();
    }

    /// Answers the shard's offer to a subscriber.
    pub fn answer(&mut self, offer: String, now: Instant) -> String {
        let offer = rtc::peer_connection::sdp::RTCSessionDescription::offer(offer).unwrap();
        self.pc.set_remote_description(now, offer).unwrap();
        let answer = self.pc.create_answer(None).unwrap();
        self.pc.set_local_description(now, answer).unwrap();
        self.pc.local_description().unwrap().sdp
    }

    pub fn close(&mut self) {
        let _ = self.pc.close();
        self.closed = true;
    }

    /// A datagram from the network.
    pub fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(arrival) = clear_rtp_header(datagram, now) {
            self.arrivals.push(arrival);
        }
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: BytesMut::from(datagram),
        };
        let _ = self.pc.handle_read(message);
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let frame = self.source.as_ref().filter(|_| self.connected).and_then(|s| s.next_frame);
        [self.pc.poll_timeout(), frame].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.pc.poll_timeout().is_some_and(|at| at <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        if self.connected {
            self.send_due_frames(now);
        }
    }

    /// Everything the stack has to say: datagrams to send (returned), events and messages
    /// (handled here).
    pub fn drain(&mut self, now: Instant) -> Vec<(SocketAddr, Bytes)> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        loop {
            let mut progressed = false;
            while let Some(datagram) = self.pc.poll_write() {
                progressed = true;
                let bytes = datagram.message.freeze();
                if crate::stun::is_stun(&bytes) {
                    self.last_check = Some((datagram.transport.peer_addr, bytes.clone()));
                }
                out.push((datagram.transport.peer_addr, bytes));
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
                    source.next_frame.get_or_insert(now);
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
        if let (Some(source), Feedback::KeyframeRequest { ssrc }) = (self.source.as_mut(), &feedback)
            && let Some(layer) = source.ssrcs.iter().position(|s| s == ssrc)
        {
            source.keyframe_wanted[layer] = true;
        }
        self.feedback.push((at, feedback));
    }

    /// Sends the frames due by `now`, every layer being encoded.
    fn send_due_frames(&mut self, now: Instant) {
        let Some(source) = self.source.as_mut() else { return };
        let interval = Duration::from_secs(1) / FPS;
        while let Some(due) = source.next_frame.filter(|due| *due <= now) {
            let timestamp = source.frame.wrapping_mul(VIDEO_CLOCK / FPS);
            for layer in 0..LAYERS.len() {
                if !source.sending[layer] {
                    continue;
                }
                let keyframe = std::mem::take(&mut source.keyframe_wanted[layer]);
                let payloads = media::vp8_frame(layer as u8, source.frame, keyframe);
                let last = payloads.len() - 1;
                for (i, payload) in payloads.into_iter().enumerate() {
                    let mut header = rtc::rtp::header::Header {
                        version: 2,
                        marker: i == last,
                        payload_type: source.payload_type,
                        sequence_number: source.seqs[layer],
                        timestamp,
                        ssrc: source.ssrcs[layer],
                        ..Default::default()
                    };
                    source.seqs[layer] = source.seqs[layer].wrapping_add(1);
                    if let Some((mid, rid)) = source.extensions {
                        header.extension = true;
                        header.extension_profile = rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE;
                        header.set_extension(mid, Bytes::copy_from_slice(source.mid.as_bytes())).unwrap();
                        header.set_extension(rid, Bytes::from_static(LAYERS[layer].rid.as_bytes())).unwrap();
                    }
                    let packet = rtc::rtp::Packet { header, payload };
                    self.pc.rtp_sender(source.sender).unwrap().write_rtp(now, packet).unwrap();
                    source.packets_sent[layer] += 1;
                }
            }
            source.frame += 1;
            source.next_frame = Some(due + interval);
        }
    }

    /// Pauses or resumes encoding one layer; a resumed layer starts with a keyframe.
    pub fn set_sending(&mut self, layer: usize, sending: bool) {
        let source = self.source.as_mut().unwrap();
        if sending && !source.sending[layer] {
            source.keyframe_wanted[layer] = true;
        }
        source.sending[layer] = sending;
    }

    /// Sends RTCP about the stream received as `ssrc` (a subscriber's feedback).
    pub fn send_rtcp(&mut self, ssrc: u32, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) {
        let receiver = self.receivers.get(&ssrc).copied().expect("no receiver for that SSRC");
        self.pc.rtp_receiver(receiver).unwrap().write_rtcp(now, packets).unwrap();
    }

    /// What this subscriber received of one publisher layer.
    pub fn received_of_layer(&self, layer: u8) -> impl Iterator<Item = &Received> {
        self.received.iter().filter(move |r| r.origin.is_some_and(|o| o.layer == layer))
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

/// The media section id of the transceiver carrying `sender`.
fn mid_of(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<String> {
    let transceivers: Vec<_> = pc.get_transceivers().collect();
    transceivers.into_iter().find_map(|t| {
        let transceiver = pc.rtp_transceiver(t)?;
        if transceiver.sender() == Some(sender) { transceiver.mid().clone() } else { None }
    })
}

/// The header of an (S)RTP datagram, which SRTP leaves in the clear; None for anything else
/// (STUN, DTLS, RTCP).
pub(super) fn clear_rtp_header(datagram: &[u8], at: Instant) -> Option<Arrival> {
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
