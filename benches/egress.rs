//! The whole egress path of one forwarded video packet, step by step, as the shard runs it for
//! each subscriber: the forwarder's decision and munging, a fresh RTP header, marshalling, SRTP
//! protection (AES-128-CM-HMAC-SHA1-80 and AEAD-AES-128-GCM), and the send system call, either
//! one `send_to` per datagram or `sendmmsg` in batches of 32.
//!
//! SRTP runs two ways: the `rtc` stack's `Context` (a fresh buffer per packet), and
//! `sfu_srtp::SrtpSender`, which seals each packet in place in one reused buffer, as the shard
//! does.
//!
//! Datagrams go to a UDP socket bound on 127.0.0.1 that nobody reads: the kernel drops what
//! overflows its buffer, which costs the sender the same.
//!
//! `cargo bench --bench egress` (numbers in docs/performance.md).

use bytes::Bytes;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use sfu_core::{Decision, Forwarder, PacketMeta, PictureId, VideoCodec, Vp8Descriptor};
use sfu_proto::{LayerPreference, SubscriptionSettings, TrackKind};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A typical video packet's payload: browsers fill packets to about 1100-1200 bytes.
const PAYLOAD_BYTES: usize = 1100;
/// Packets per run: 10 s of the 720p layer at 5 packets per frame, 30 fps.
const PACKETS: usize = 1500;
/// Datagrams per `sendmmsg` call.
const BATCH: usize = 32;

fn stream() -> Vec<PacketMeta> {
    (0..PACKETS)
        .map(|i| PacketMeta {
            layer: 0,
            ssrc: 0x1000,
            seq: i as u16,
            timestamp: 90_000 + (i / 5) as u32 * 3000,
            marker: i % 5 == 4,
            keyframe: i % 450 == 0,
            padding_only: false,
            vp8: Some(Vp8Descriptor {
                picture_id: Some(PictureId { value: (i / 5) as u16 & 0x7fff, long: true }),
                tl0_pic_idx: Some((i / 5) as u8),
                key_idx: None,
            }),
        })
        .collect()
}

fn forwarder(now: Instant) -> Forwarder {
    let mut f = Forwarder::new(TrackKind::Video, VideoCodec::Vp8, 90_000);
    f.set_preference(&SubscriptionSettings {
        track_id: "TR_bench".into(),
        layer: LayerPreference::High,
        max_width: None,
        max_height: None,
        paused: false,
    });
    f.on_connected(now);
    f
}

fn srtp(profile: ProtectionProfile) -> Context {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key = vec![7u8; profile.key_len()];
    let salt = vec![9u8; profile.salt_len()];
    Context::new(&key, &salt, profile, None, None, provider.crypto()).expect("SRTP context")
}

fn sender(profile: ProtectionProfile) -> sfu_srtp::SrtpSender {
    let profile = match profile {
        ProtectionProfile::AeadAes128Gcm => sfu_srtp::SrtpProfile::AeadAes128Gcm,
        _ => sfu_srtp::SrtpProfile::Aes128CmHmacSha1_80,
    };
    let salt_len = profile.rtc().salt_len();
    let keys = sfu_srtp::SrtpKeys { profile, master_key: vec![7; 16], master_salt: vec![9; salt_len] };
    sfu_srtp::SrtpSender::new(&keys).expect("SRTP sender")
}

/// What the egress path does to each packet after the decision, up to the socket.
#[derive(Clone, Copy)]
enum Stage {
    /// Decision, munging, header, marshalling.
    Build,
    /// ... and SRTP with the stack's context.
    Protect,
    /// ... and SRTP sealed in place in a reused buffer.
    ProtectInPlace,
    /// ... and (stack's context) one `send_to` per datagram.
    SendTo,
    /// ... and (in place) `sendmmsg` per [`BATCH`] datagrams.
    SendMmsg,
}

struct Path {
    forwarder: Forwarder,
    srtp: Context,
    sender: sfu_srtp::SrtpSender,
    socket: UdpSocket,
    sink: std::net::SocketAddr,
    /// Sealed datagrams waiting for `sendmmsg`, back to back, and where each ends.
    written: Vec<u8>,
    ends: Vec<usize>,
    start: Instant,
}

impl Path {
    fn new(profile: ProtectionProfile, socket: &UdpSocket, sink: std::net::SocketAddr) -> Self {
        let start = Instant::now();
        Self {
            forwarder: forwarder(start),
            srtp: srtp(profile),
            sender: sender(profile),
            socket: socket.try_clone().expect("socket"),
            sink,
            written: Vec::new(),
            ends: Vec::with_capacity(BATCH),
            start,
        }
    }

    /// Runs every packet through `stage`; returns the bytes that reached the send call (or would).
    fn run(&mut self, packets: &[PacketMeta], payload: &Bytes, stage: Stage) -> usize {
        let mut bytes = 0;
        for p in packets {
            let now = self.start + Duration::from_micros(u64::from(p.timestamp - 90_000) * 100 / 9);
            let Decision::Forward(t) = self.forwarder.on_packet(p, now) else { continue };
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: t.marker,
                    payload_type: 96,
                    sequence_number: t.seq,
                    timestamp: t.timestamp,
                    ssrc: 0xabcd,
                    ..Default::default()
                },
                payload: payload.clone(),
            };
            if let Stage::ProtectInPlace | Stage::SendMmsg = stage {
                // As the shard does: marshalled into the batch's buffer, numbered, sealed there.
                let (header_len, plain_len) = (packet.header.marshal_size(), packet.marshal_size());
                let start = self.written.len();
                self.written.resize(start + plain_len + self.sender.tag_len(), 0);
                let datagram = &mut self.written[start..];
                packet.marshal_to(&mut datagram[..plain_len]).expect("marshal");
                if let Some(vp8) = &t.vp8 {
                    vp8.apply(&mut datagram[header_len..plain_len]);
                }
                self.sender.protect(datagram, header_len).expect("SRTP");
                bytes += datagram.len();
                self.ends.push(self.written.len());
                if self.ends.len() == BATCH || matches!(stage, Stage::ProtectInPlace) {
                    self.flush(stage);
                }
                continue;
            }
            let mut plain = packet.marshal().expect("marshal");
            if let Some(vp8) = &t.vp8 {
                vp8.apply(&mut plain[packet.header.marshal_size()..]);
            }
            if let Stage::Build = stage {
                bytes += black_box(plain).len();
                continue;
            }
            let protected = self.srtp.encrypt_rtp_with_header(&plain, &packet.header).expect("SRTP");
            bytes += protected.len();
            if let Stage::SendTo = stage {
                let _ = self.socket.send_to(&protected, self.sink);
            } else {
                black_box(protected);
            }
        }
        self.flush(stage);
        bytes
    }

    /// Sends (or, protecting only, drops) the sealed datagrams waiting.
    fn flush(&mut self, stage: Stage) {
        if let Stage::SendMmsg = stage
            && !self.ends.is_empty()
        {
            let mut start = 0;
            let datagrams: Vec<&[u8]> = self
                .ends
                .iter()
                .map(|&end| {
                    let d = &self.written[start..end];
                    start = end;
                    d
                })
                .collect();
            send_batch(&self.socket, self.sink, &datagrams);
        }
        black_box(&self.written);
        self.written.clear();
        self.ends.clear();
    }
}

/// One `sendmmsg` call for all of `datagrams` (all to `to`).
fn send_batch(socket: &UdpSocket, to: std::net::SocketAddr, datagrams: &[&[u8]]) {
    use std::os::fd::AsRawFd;
    let std::net::SocketAddr::V4(v4) = to else { return };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let mut iovecs: Vec<libc::iovec> =
        datagrams.iter().map(|d| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() }).collect();
    let mut headers: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .map(|iov| {
            // SAFETY: a zeroed msghdr is a valid empty header; the fields set below point into
            // `addr` and `iovecs`, which outlive the call.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = &addr as *const libc::sockaddr_in as *mut libc::c_void;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: `headers` holds `headers.len()` initialized entries whose pointers stay valid for
    // the duration of the call; the kernel only reads them (and writes `msg_len`).
    unsafe {
        libc::sendmmsg(socket.as_raw_fd(), headers.as_mut_ptr(), headers.len() as libc::c_uint, libc::MSG_DONTWAIT);
    }
}

fn egress(c: &mut Criterion) {
    let packets = stream();
    // A VP8 descriptor (15-bit picture ID, TL0PICIDX, TID) before the frame data.
    let mut payload = vec![0x90, 0xe0, 0x80, 0x01, 0x01, 0x00];
    payload.resize(PAYLOAD_BYTES, 0x5a);
    let payload = Bytes::from(payload);
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink socket");
    let sink_addr = sink.local_addr().expect("sink address");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("send socket");
    socket.set_nonblocking(true).expect("nonblocking");

    // What is measured must forward every packet.
    for stage in [Stage::Protect, Stage::ProtectInPlace] {
        let mut check = Path::new(ProtectionProfile::AeadAes128Gcm, &socket, sink_addr);
        let sent = check.run(&packets, &payload, stage);
        assert!(sent >= PACKETS * PAYLOAD_BYTES, "only {sent} bytes protected");
    }

    let mut group = c.benchmark_group("egress");
    group.throughput(Throughput::Elements(packets.len() as u64));
    let cases = [
        ("build (decision, munge, header, marshal)", ProtectionProfile::AeadAes128Gcm, Stage::Build),
        ("build + SRTP AES-CM-HMAC-SHA1-80", ProtectionProfile::Aes128CmHmacSha1_80, Stage::Protect),
        ("build + SRTP AES-128-GCM", ProtectionProfile::AeadAes128Gcm, Stage::Protect),
        ("build + SRTP in place AES-CM-HMAC-SHA1-80", ProtectionProfile::Aes128CmHmacSha1_80, Stage::ProtectInPlace),
        ("build + SRTP in place AES-128-GCM", ProtectionProfile::AeadAes128Gcm, Stage::ProtectInPlace),
        ("build + SRTP AES-CM-HMAC-SHA1-80 + send_to", ProtectionProfile::Aes128CmHmacSha1_80, Stage::SendTo),
        ("build + SRTP AES-128-GCM + send_to", ProtectionProfile::AeadAes128Gcm, Stage::SendTo),
        ("build + SRTP in place AES-128-GCM + sendmmsg x32", ProtectionProfile::AeadAes128Gcm, Stage::SendMmsg),
    ];
    for (name, profile, stage) in cases {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || Path::new(profile, &socket, sink_addr),
                |path| path.run(&packets, &payload, stage),
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, egress);
criterion_main!(benches);
