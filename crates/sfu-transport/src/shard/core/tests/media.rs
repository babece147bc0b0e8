//! Synthetic simulcast VP8 as a browser would packetize it, with a trailer on every packet naming
//! the layer and frame it came from, so a subscriber can tell what the shard forwarded to it.
//!
//! Each payload starts with a VP8 payload descriptor (RFC 7741: X, I, 15-bit picture id, S on a
//! frame's first packet); a frame's first packet also carries the VP8 frame tag, and a keyframe's
//! the start code and its size, which is what the shard's keyframe and resolution detection read.

use bytes::{BufMut, Bytes, BytesMut};

/// One simulcast layer the test publisher sends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerSpec {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub kbps: u32,
}

/// The three layers, lowest first, at the sizes browsers use for a 720p camera.
pub(crate) const LAYERS: [LayerSpec; 3] = [
    LayerSpec { rid: "q", width: 320, height: 180, kbps: 150 },
    LayerSpec { rid: "h", width: 640, height: 360, kbps: 500 },
    LayerSpec { rid: "f", width: 1280, height: 720, kbps: 1500 },
];

pub(crate) const FPS: u32 = 30;
pub(crate) const VIDEO_CLOCK: u32 = 90_000;

/// Largest payload a packet carries, descriptor and trailer included.
const MAX_PAYLOAD: usize = 1000;
const DESCRIPTOR_LEN: usize = 4;
const TRAILER_MAGIC: [u8; 2] = *b"VT";
const TRAILER_LEN: usize = 7;
/// A keyframe is this many times an average frame.
const KEYFRAME_FACTOR: usize = 3;

/// What a forwarded payload says about where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub layer: u8,
    pub frame: u32,
}

/// The RTP payloads of frame `frame` of layer `layer`.
pub(crate) fn vp8_frame(layer: u8, frame: u32, keyframe: bool) -> Vec<Bytes> {
    let spec = LAYERS[usize::from(layer)];
    let average = spec.kbps as usize * 1000 / 8 / FPS as usize;
    let size = if keyframe { average * KEYFRAME_FACTOR } else { average };
    let per_packet = MAX_PAYLOAD - DESCRIPTOR_LEN - TRAILER_LEN;
    let count = size.div_ceil(per_packet).max(1);
    let picture_id = (frame & 0x7fff) as u16;
    (0..count)
        .map(|i| {
            let mut p = BytesMut::with_capacity(MAX_PAYLOAD);
            // X, and S on the first packet (partition 0); I with an M-bit (15-bit) picture id.
            p.put_u8(0x80 | if i == 0 { 0x10 } else { 0 });
            p.put_u8(0x80);
            p.put_u16(0x8000 | picture_id);
            let mut body = per_packet.min(size.saturating_sub(i * per_packet)).max(16);
            if i == 0 {
                // Frame tag: P bit (0 = keyframe), show_frame, first partition size.
                let tag = u32::from(!keyframe) | (1 << 4) | ((size as u32 & 0x7ffff) << 5);
                p.put_slice(&tag.to_le_bytes()[..3]);
                body = body.saturating_sub(3);
                if keyframe {
                    p.put_slice(&[0x9d, 0x01, 0x2a]);
                    p.put_u16_le(spec.width);
                    p.put_u16_le(spec.height);
                    body = body.saturating_sub(7);
                }
            }
            p.put_bytes(0x5a, body);
            p.put_slice(&TRAILER_MAGIC);
            p.put_u8(layer);
            p.put_u32(frame);
            p.freeze()
        })
        .collect()
}

/// The layer and frame a payload written by [`vp8_frame`] came from.
pub(crate) fn origin(payload: &[u8]) -> Option<Origin> {
    let t = payload.get(payload.len().checked_sub(TRAILER_LEN)?..)?;
    if t[..2] != TRAILER_MAGIC {
        return None;
    }
    Some(Origin { layer: t[2], frame: u32::from_be_bytes([t[3], t[4], t[5], t[6]]) })
}

/// Whether a payload written by [`vp8_frame`] starts a keyframe.
pub(crate) fn is_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & 0x10 != 0) && payload.get(DESCRIPTOR_LEN).is_some_and(|tag| tag & 1 == 0)
}

#[test]
fn synthetic_frames_read_back_as_the_shard_reads_them() {
    let key = vp8_frame(2, 7, true);
    assert!(key.len() > 1 && key.iter().all(|p| p.len() <= MAX_PAYLOAD));
    assert!(is_keyframe(&key[0]) && !is_keyframe(&key[1]));
    assert!(sfu_core::is_vp8_keyframe(&key[0]));
    assert_eq!(sfu_core::vp8_keyframe_size(&key[0]), Some((1280, 720)));
    assert_eq!(origin(&key[1]), Some(Origin { layer: 2, frame: 7 }));
    let delta = vp8_frame(0, 8, false);
    assert!(!is_keyframe(&delta[0]) && !sfu_core::is_vp8_keyframe(&delta[0]));
}
