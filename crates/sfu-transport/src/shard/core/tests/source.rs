//! What a test publisher sends: a simulcast camera of synthetic VP8 (keyframes at the start and
//! whenever the shard asks for one) and, optionally, a microphone of Opus-sized packets.

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpSendParameters, RtpCodecKind,
};
use std::time::{Duration, Instant};

use super::codecs::{PT_OPUS, PT_VP8, opus, vp8};
use super::media::{self, FPS, LAYERS, VIDEO_CLOCK};

/// An Opus packet every 20 ms, of a ~40 kbit/s voice.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_PAYLOAD: usize = 100;
const AUDIO_CLOCK_STEP: u32 = 960;

pub(crate) struct Source {
    video: RTCRtpSenderId,
    pub mid: String,
    pub ssrcs: [u32; 3],
    seqs: [u16; 3],
    /// Layers being encoded; a paused one sends nothing (as a browser does for dynacast).
    pub sending: [bool; 3],
    keyframe_wanted: [bool; 3],
    /// The mid and rid header extension ids, once negotiated.
    extensions: Option<(u8, u8)>,
    payload_type: u8,
    frame: u32,
    next_frame: Option<Instant>,
    pub packets_sent: [u64; 3],
    audio: Option<Microphone>,
}

/// One camera packet chosen by the caller, not by the source's frame clock.
pub(crate) struct RawRtp {
    /// Which simulcast stream (SSRC) carries it, modulo the layer count.
    pub layer: usize,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// The rid extension's value; the layer's own rid when `None`.
    pub rid: Option<Bytes>,
    pub payload: Bytes,
}

struct Microphone {
    sender: RTCRtpSenderId,
    ssrc: u32,
    seq: u16,
    payload_type: u8,
    packets: u32,
    next: Option<Instant>,
}

impl Source {
    /// Adds the camera (and the microphone) to `pc`, before its offer is made.
    pub fn add_tracks(pc: &mut RTCPeerConnection, with_audio: bool) -> Self {
        let audio = with_audio.then(|| {
            let ssrc = rand::random();
            let encoding = RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec: opus(),
                active: true,
                ..Default::default()
            };
            let track =
                MediaStreamTrack::new("av".into(), "mic".into(), "mic".into(), RtpCodecKind::Audio, vec![encoding]);
            let sender = pc.add_track(track).unwrap();
            Microphone { sender, ssrc, seq: rand::random(), payload_type: PT_OPUS, packets: 0, next: None }
        });
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
            MediaStreamTrack::new("av".into(), "camera".into(), "camera".into(), RtpCodecKind::Video, encodings);
        let video = pc.add_track(track).unwrap();
        Self {
            video,
            mid: String::new(),
            ssrcs,
            seqs: std::array::from_fn(|_| rand::random()),
            sending: [true; 3],
            keyframe_wanted: [true; 3],
            extensions: None,
            payload_type: PT_VP8,
            frame: 0,
            next_frame: None,
            packets_sent: [0; 3],
            audio,
        }
    }

    /// The camera's and the microphone's media sections, once the offer is made.
    pub fn learn_mids(&mut self, pc: &mut RTCPeerConnection) -> (String, Option<String>) {
        self.mid = mid_of(pc, self.video).unwrap();
        (self.mid.clone(), self.audio.as_ref().and_then(|a| mid_of(pc, a.sender)))
    }

    /// What the shard's answer settled: payload types and header extension ids.
    pub fn negotiated(&mut self, pc: &mut RTCPeerConnection) {
        let parameters = pc.rtp_sender(self.video).unwrap().get_parameters().clone();
        let extension =
            |uri: &str| parameters.rtp_parameters.header_extensions.iter().find(|e| e.uri == uri).map(|e| e.id as u8);
        self.extensions = extension(sfu_proto::rtp_extensions::MID).zip(extension(sfu_proto::rtp_extensions::RID));
        self.payload_type = payload_type(&parameters, MIME_TYPE_VP8);
        if let Some(audio) = self.audio.as_mut() {
            audio.payload_type = payload_type(pc.rtp_sender(audio.sender).unwrap().get_parameters(), MIME_TYPE_OPUS);
        }
    }

    /// The connection is up: media starts.
    pub fn start(&mut self, now: Instant) {
        self.next_frame.get_or_insert(now);
        if let Some(audio) = self.audio.as_mut() {
            audio.next.get_or_insert(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_frame, self.audio.as_ref().and_then(|a| a.next)].into_iter().flatten().min()
    }

    /// The shard asked for a keyframe of the stream `ssrc`.
    pub fn on_keyframe_request(&mut self, ssrc: u32) {
        if let Some(layer) = self.ssrcs.iter().position(|s| *s == ssrc) {
            self.keyframe_wanted[layer] = true;
        }
    }

    /// Pauses or resumes encoding one layer; a resumed layer starts with a keyframe.
    pub fn set_sending(&mut self, layer: usize, sending: bool) {
        if sending && !self.sending[layer] {
            self.keyframe_wanted[layer] = true;
        }
        self.sending[layer] = sending;
    }

    /// Sends the frames and audio packets due by `now`.
    pub fn send_due(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        while let Some(due) = self.next_frame.filter(|due| *due <= now) {
            self.send_frame(pc, now);
            self.next_frame = Some(due + Duration::from_secs(1) / FPS);
        }
        let Some(audio) = self.audio.as_mut() else { return };
        while let Some(due) = audio.next.filter(|due| *due <= now) {
            let header = rtc::rtp::header::Header {
                version: 2,
                marker: audio.packets == 0,
                payload_type: audio.payload_type,
                sequence_number: audio.seq,
                timestamp: audio.packets.wrapping_mul(AUDIO_CLOCK_STEP),
                ssrc: audio.ssrc,
                ..Default::default()
            };
            let packet = rtc::rtp::Packet { header, payload: Bytes::from_static(&[0x60; AUDIO_PAYLOAD]) };
            pc.rtp_sender(audio.sender).unwrap().write_rtp(now, packet).unwrap();
            audio.seq = audio.seq.wrapping_add(1);
            audio.packets += 1;
            audio.next = Some(due + AUDIO_INTERVAL);
        }
    }

    /// Sends `raw` on the camera's sender; false when the stack refuses it.
    pub fn send_raw(&mut self, pc: &mut RTCPeerConnection, raw: RawRtp, now: Instant) -> bool {
        let layer = raw.layer % LAYERS.len();
        let mut header = rtc::rtp::header::Header {
            version: 2,
            marker: raw.marker,
            payload_type: self.payload_type,
            sequence_number: raw.seq,
            timestamp: raw.timestamp,
            ssrc: self.ssrcs[layer],
            ..Default::default()
        };
        if let Some((mid, rid)) = self.extensions {
            header.extension = true;
            header.extension_profile = rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE;
            let rid_value = raw.rid.unwrap_or_else(|| Bytes::from_static(LAYERS[layer].rid.as_bytes()));
            let mid_value = Bytes::copy_from_slice(self.mid.as_bytes());
            if header.set_extension(mid, mid_value).is_err() || header.set_extension(rid, rid_value).is_err() {
                return false;
            }
        }
        let packet = rtc::rtp::Packet { header, payload: raw.payload };
        pc.rtp_sender(self.video).is_some_and(|mut sender| sender.write_rtp(now, packet).is_ok())
    }

    fn send_frame(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        let timestamp = self.frame.wrapping_mul(VIDEO_CLOCK / FPS);
        for layer in (0..LAYERS.len()).filter(|l| self.sending[*l]) {
            let keyframe = std::mem::take(&mut self.keyframe_wanted[layer]);
            let payloads = media::vp8_frame(layer as u8, self.frame, keyframe);
            let last = payloads.len() - 1;
            for (i, payload) in payloads.into_iter().enumerate() {
                let mut header = rtc::rtp::header::Header {
                    version: 2,
                    marker: i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.seqs[layer],
                    timestamp,
                    ssrc: self.ssrcs[layer],
                    ..Default::default()
                };
                self.seqs[layer] = self.seqs[layer].wrapping_add(1);
                // The shard learns which layer an SSRC is from the rid (and the mid) extension.
                if let Some((mid, rid)) = self.extensions {
                    header.extension = true;
                    header.extension_profile = rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE;
                    header.set_extension(mid, Bytes::copy_from_slice(self.mid.as_bytes())).unwrap();
                    header.set_extension(rid, Bytes::from_static(LAYERS[layer].rid.as_bytes())).unwrap();
                }
                let packet = rtc::rtp::Packet { header, payload };
                pc.rtp_sender(self.video).unwrap().write_rtp(now, packet).unwrap();
                self.packets_sent[layer] += 1;
            }
        }
        self.frame += 1;
    }
}

fn payload_type(parameters: &RTCRtpSendParameters, mime: &str) -> u8 {
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
        .unwrap()
}

/// The media section id of the transceiver carrying `sender`.
fn mid_of(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<String> {
    let transceivers: Vec<_> = pc.get_transceivers().collect();
    transceivers.into_iter().find_map(|t| {
        let transceiver = pc.rtp_transceiver(t)?;
        if transceiver.sender() == Some(sender) { transceiver.mid().clone() } else { None }
    })
}
