//! Synthetic media: VP8-shaped simulcast video and Opus-shaped audio, and the trailer every
//! packet carries so a subscriber can measure end-to-end latency.
//!
//! Video payloads start with a real VP8 payload descriptor (RFC 7741: X=1, I=1, 15-bit picture
//! id) and, on the first packet of a frame, a VP8 frame tag; keyframes add the start code
//! `9d 01 2a` and the frame size, so the server's keyframe and resolution detection work. The
//! rest is filler. Every payload ends with a [`TRAILER_LEN`]-byte trailer: magic, send time in
//! nanoseconds since the harness epoch, and the layer (or audio).

use bytes::{BufMut, Bytes, BytesMut};

pub const TRAILER_LEN: usize = 16;
const TRAILER_MAGIC: u32 = 0x4c54_7331; // "Lts1"
/// Trailer `kind` byte for audio; video layers are 0, 1, 2.
pub const KIND_AUDIO: u8 = 0xff;

/// Largest RTP payload the packetizer produces (descriptor + data + trailer).
pub const MAX_PAYLOAD: usize = 1100;
const VP8_DESCRIPTOR_LEN: usize = 4;

pub const FPS: u32 = 30;
pub const VIDEO_CLOCK: u32 = 90_000;
pub const AUDIO_PACKETS_PER_SEC: u32 = 50;
pub const AUDIO_CLOCK: u32 = 48_000;
/// Opus at ~40 kbit/s: 100 bytes every 20 ms.
const AUDIO_PAYLOAD: usize = 100;
/// A keyframe is this many times the size of an average delta frame.
const KEYFRAME_FACTOR: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub kbps: u32,
}

/// The three simulcast layers the harness publishes, low first.
pub const LAYERS: [LayerSpec; 3] = [
    LayerSpec { rid: "q", width: 320, height: 180, kbps: 150 },
    LayerSpec { rid: "h", width: 640, height: 360, kbps: 500 },
    LayerSpec { rid: "f", width: 1280, height: 720, kbps: 1500 },
];

/// Average bytes of a frame at `kbps`, and the delta-frame size that keeps the average when one
/// frame in `keyframe_every` is a keyframe of `KEYFRAME_FACTOR` times the average.
pub fn frame_sizes(kbps: u32, keyframe_every: u32) -> (usize, usize) {
    let average = (kbps as usize * 1000 / 8) / FPS as usize;
    let n = keyframe_every.max(2) as usize;
    let delta = (average * n).saturating_sub(average * KEYFRAME_FACTOR) / (n - 1);
    (average * KEYFRAME_FACTOR, delta.max(64))
}

pub fn write_trailer(buf: &mut BytesMut, send_ns: u64, kind: u8) {
    buf.put_u32(TRAILER_MAGIC);
    buf.put_u64(send_ns);
    buf.put_u8(kind);
    buf.put_bytes(0, 3);
}

/// The same payload with its trailer's send time replaced.
pub fn restamp(payload: &Bytes, send_ns: u64) -> Bytes {
    let mut out = BytesMut::from(&payload[..]);
    if let Some(at) = out.len().checked_sub(TRAILER_LEN) {
        out[at + 4..at + 12].copy_from_slice(&send_ns.to_be_bytes());
    }
    out.freeze()
}

/// (send time ns, kind) from the end of a payload written by this harness.
pub fn read_trailer(payload: &[u8]) -> Option<(u64, u8)> {
    let t = payload.get(payload.len().checked_sub(TRAILER_LEN)?..)?;
    if u32::from_be_bytes([t[0], t[1], t[2], t[3]]) != TRAILER_MAGIC {
        return None;
    }
    let ns = u64::from_be_bytes(t[4..12].try_into().ok()?);
    Some((ns, t[12]))
}

/// Splits one video frame into RTP payloads.
pub fn vp8_frame(
    spec: &LayerSpec,
    layer: u8,
    picture_id: u16,
    keyframe: bool,
    frame_bytes: usize,
    send_ns: u64,
) -> Vec<Bytes> {
    let per_packet = MAX_PAYLOAD - VP8_DESCRIPTOR_LEN - TRAILER_LEN;
    let count = frame_bytes.div_ceil(per_packet).max(1);
    let mut left = frame_bytes;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let body = left.min(per_packet).max(16);
        left = left.saturating_sub(body);
        let mut p = BytesMut::with_capacity(VP8_DESCRIPTOR_LEN + body + TRAILER_LEN);
        // Payload descriptor: X, S on the first packet, partition 0; I with a 15-bit picture id.
        p.put_u8(0x80 | if i == 0 { 0x10 } else { 0 });
        p.put_u8(0x80);
        p.put_u16(0x8000 | (picture_id & 0x7fff));
        let mut written = 0;
        if i == 0 {
            // Frame tag: P bit (0 = keyframe), version 0, show_frame, first partition size.
            let partition = (frame_bytes as u32).min(0x7ffff);
            let tag = u32::from(!keyframe) | (1 << 4) | (partition << 5);
            p.put_u8(tag as u8);
            p.put_u8((tag >> 8) as u8);
            p.put_u8((tag >> 16) as u8);
            written += 3;
            if keyframe {
                p.put_slice(&[0x9d, 0x01, 0x2a]);
                p.put_u16_le(spec.width & 0x3fff);
                p.put_u16_le(spec.height & 0x3fff);
                written += 7;
            }
        }
        p.put_bytes(0x5a, body.saturating_sub(written));
        write_trailer(&mut p, send_ns, layer);
        out.push(p.freeze());
    }
    out
}

pub fn opus_packet(send_ns: u64) -> Bytes {
    let mut p = BytesMut::with_capacity(AUDIO_PAYLOAD);
    // TOC byte: config 12 (SILK+CELT hybrid SWB 20 ms), mono, one frame.
    p.put_u8(12 << 3);
    p.put_bytes(0x33, AUDIO_PAYLOAD - 1 - TRAILER_LEN);
    write_trailer(&mut p, send_ns, KIND_AUDIO);
    p.freeze()
}

/// Whether a VP8 payload starts a keyframe (start of partition 0, P bit clear).
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return false;
    }
    let mut offset = 1;
    if first & 0x80 != 0 {
        let Some(&ext) = payload.get(1) else { return false };
        offset += 1;
        if ext & 0x80 != 0 {
            let Some(&pid) = payload.get(offset) else { return false };
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            offset += 1;
        }
        if ext & 0x30 != 0 {
            offset += 1;
        }
    }
    payload.get(offset).is_some_and(|h| h & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_is_recognised_and_sized() {
        let packets = vp8_frame(&LAYERS[2], 2, 7, true, 24_000, 42);
        assert!(packets.len() > 1);
        assert!(packets.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert!(is_vp8_keyframe(&packets[0]));
        assert!(!is_vp8_keyframe(&packets[1]));
        let header = &packets[0][VP8_DESCRIPTOR_LEN..];
        assert_eq!(&header[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([header[6], header[7]]), 1280);
        assert_eq!(u16::from_le_bytes([header[8], header[9]]), 720);
        assert_eq!(read_trailer(&packets[1]), Some((42, 2)));
        let total: usize = packets.iter().map(|p| p.len() - VP8_DESCRIPTOR_LEN - TRAILER_LEN).sum();
        assert!(total >= 24_000);
    }

    #[test]
    fn restamping_changes_only_the_send_time() {
        let packet = vp8_frame(&LAYERS[1], 1, 7, false, 500, 42).remove(0);
        let restamped = restamp(&packet, 99);
        assert_eq!(read_trailer(&restamped), Some((99, 1)));
        assert_eq!(restamped[..restamped.len() - TRAILER_LEN], packet[..packet.len() - TRAILER_LEN]);
    }

    #[test]
    fn delta_frames_are_not_keyframes() {
        let packets = vp8_frame(&LAYERS[0], 0, 8, false, 600, 1);
        assert_eq!(packets.len(), 1);
        assert!(!is_vp8_keyframe(&packets[0]));
        assert_eq!(read_trailer(&opus_packet(9)), Some((9, KIND_AUDIO)));
    }

    #[test]
    fn frame_sizes_keep_the_average() {
        let (key, delta) = frame_sizes(1500, 90);
        let average = (key + delta * 89) / 90;
        assert!((average as i64 - 6250).abs() < 50, "{average}");
    }
}
