//! Keyframe detection from RTP payloads, for the codecs the router switches layers on.
//!
//! The router may only switch a subscriber to another layer at a keyframe, so the caller runs
//! [`VideoCodec::is_keyframe`] on each video packet and passes the result in
//! [`PacketMeta::keyframe`](crate::PacketMeta). Payloads come from the network: every parser
//! here returns `false`/`None` on short or odd input, never panics.

/// The video codecs the router understands well enough to find keyframes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741 payloads).
    Vp8,
    /// H.264 (RFC 6184 payloads: single NAL unit, STAP-A or FU-A).
    H264,
    /// Any other codec (or audio): no packet is recognised as a keyframe.
    Other,
}

impl VideoCodec {
    /// The codec named by an SDP/WebRTC mime type such as `video/VP8` (case-insensitive).
    pub fn from_mime(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case("video/vp8") {
            VideoCodec::Vp8
        } else if mime.eq_ignore_ascii_case("video/h264") {
            VideoCodec::H264
        } else {
            VideoCodec::Other
        }
    }

    /// Whether this RTP payload starts a keyframe of this codec.
    pub fn is_keyframe(&self, payload: &[u8]) -> bool {
        match self {
            VideoCodec::Vp8 => is_vp8_keyframe(payload),
            VideoCodec::H264 => is_h264_keyframe(payload),
            VideoCodec::Other => false,
        }
    }
}

// VP8 payload descriptor bits (RFC 7741 section 4.2).
const VP8_S: u8 = 0x10; // start of a partition
const VP8_PID: u8 = 0x07; // partition index
/// The start code every VP8 keyframe header carries after its 3-byte frame tag.
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// Offset of the VP8 payload header when this packet starts the first partition of a frame.
fn vp8_first_partition_offset(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    if first & VP8_S == 0 || first & VP8_PID != 0 {
        return None;
    }
    let (_, at) = crate::vp8::locate(payload)?;
    // The header itself must be present.
    (at.header < payload.len()).then_some(at.header)
}

/// Whether a VP8 RTP payload (descriptor included) starts a keyframe: start of partition 0 and
/// the inverse key frame flag (P) of the VP8 payload header clear.
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    vp8_first_partition_offset(payload).and_then(|offset| payload.get(offset)).is_some_and(|header| header & 0x01 == 0)
}

/// Width and height of a VP8 keyframe, read from the keyframe header (RFC 6386 section 9.1).
/// The two scaling bits above each 14-bit dimension are masked off; a zero dimension is no size
/// (no encoder writes one, and it would sort the layer below every other).
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    if !is_vp8_keyframe(payload) {
        return None;
    }
    let header = payload.get(vp8_first_partition_offset(payload)?..)?;
    if header.get(3..6)? != VP8_START_CODE {
        return None;
    }
    let dims = header.get(6..10)?;
    let width = u16::from_le_bytes([dims[0], dims[1]]) & 0x3fff;
    let height = u16::from_le_bytes([dims[2], dims[3]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

// H.264 NAL unit types (RFC 6184 section 5.4 and H.264 table 7-1).
const NAL_TYPE_MASK: u8 = 0x1f;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;
const FU_START: u8 = 0x80;

fn is_h264_keyframe_nal(nal_type: u8) -> bool {
    nal_type == NAL_IDR || nal_type == NAL_SPS
}

/// Whether an H.264 RTP payload starts a keyframe: an IDR slice or an SPS, sent as a single
/// NAL unit, inside a STAP-A aggregate, or as the first fragment of an FU-A.
pub fn is_h264_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & NAL_TYPE_MASK {
        NAL_STAP_A => stap_a_has_keyframe(payload.get(1..).unwrap_or_default()),
        NAL_FU_A => payload.get(1).is_some_and(|fu| fu & FU_START != 0 && is_h264_keyframe_nal(fu & NAL_TYPE_MASK)),
        nal_type => is_h264_keyframe_nal(nal_type),
    }
}

/// Scans the NAL units of a STAP-A body (each prefixed by a 16-bit size). A unit whose size
/// runs past the end ends the scan.
fn stap_a_has_keyframe(mut body: &[u8]) -> bool {
    while let Some(size_bytes) = body.get(..2) {
        let size = usize::from(u16::from_be_bytes([size_bytes[0], size_bytes[1]]));
        let Some(nal) = body.get(2..2 + size) else {
            return false;
        };
        if nal.first().is_some_and(|h| is_h264_keyframe_nal(h & NAL_TYPE_MASK)) {
            return true;
        }
        body = &body[2 + size..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 keyframe header: frame tag (P=0), start code, then 640x360 with scaling bits set.
    const VP8_KEY_HEADER: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0xc1];

    fn vp8(descriptor: &[u8], header: &[u8]) -> Vec<u8> {
        [descriptor, header].concat()
    }

    #[test]
    fn vp8_keyframe_detection() {
        let delta_header = [0x11, 0x02, 0x00];
        let cases: &[(&str, Vec<u8>, bool)] = &[
            ("minimal descriptor", vp8(&[0x10], &VP8_KEY_HEADER), true),
            ("delta frame", vp8(&[0x10], &delta_header), false),
            ("not start of partition", vp8(&[0x00], &VP8_KEY_HEADER), false),
            ("partition 1", vp8(&[0x11], &VP8_KEY_HEADER), false),
            ("7-bit picture id", vp8(&[0x90, 0x80, 0x05], &VP8_KEY_HEADER), true),
            ("15-bit picture id", vp8(&[0x90, 0x80, 0x81, 0x23], &VP8_KEY_HEADER), true),
            ("15-bit id, delta", vp8(&[0x90, 0x80, 0x81, 0x23], &delta_header), false),
            ("I L T K", vp8(&[0x90, 0xf0, 0x85, 0x01, 0x07, 0x40], &VP8_KEY_HEADER), true),
            ("only K", vp8(&[0x90, 0x10, 0x01], &VP8_KEY_HEADER), true),
            ("only L", vp8(&[0x90, 0x40, 0x09], &delta_header), false),
            ("empty", vec![], false),
            ("descriptor only", vec![0x10], false),
            ("extension byte missing", vec![0x90], false),
            ("15-bit id cut short", vec![0x90, 0x80, 0x81], false),
            ("header missing after I L T", vec![0x90, 0xe0, 0x05, 0x01, 0x07], false),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(is_vp8_keyframe(payload), *expected, "{name}");
            assert_eq!(VideoCodec::Vp8.is_keyframe(payload), *expected, "{name}");
        }
    }

    /// (name, payload, expected size)
    type SizeCase = (&'static str, Vec<u8>, Option<(u16, u16)>);

    #[test]
    fn vp8_keyframe_dimensions() {
        let cases: &[SizeCase] = &[
            ("640x360, scaling masked", vp8(&[0x10], &VP8_KEY_HEADER), Some((640, 360))),
            (
                "1280x720 after picture id",
                vp8(&[0x90, 0x80, 0x81, 0x23], &[0x50, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]),
                Some((1280, 720)),
            ),
            ("delta frame", vp8(&[0x10], &[0x11, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0, 5, 0xd0, 2]), None),
            ("bad start code", vp8(&[0x10], &[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 0, 5, 0xd0, 2]), None),
            ("truncated size", vp8(&[0x10], &VP8_KEY_HEADER[..9]), None),
            ("zero height", vp8(&[0x10], &[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x00, 0xc0]), None),
            ("zero width", vp8(&[0x10], &[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x40, 0x68, 0x01]), None),
            ("truncated start code", vp8(&[0x10], &VP8_KEY_HEADER[..4]), None),
            ("empty", vec![], None),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(vp8_keyframe_size(payload), *expected, "{name}");
        }
    }

    #[test]
    fn h264_keyframe_detection() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("single IDR", &[0x65, 0x88, 0x84], true),
            ("single SPS", &[0x67, 0x42, 0xc0, 0x1f], true),
            ("single PPS", &[0x68, 0xce], false),
            ("single non-IDR slice", &[0x41, 0x9a], false),
            ("STAP-A with SPS", &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68], true),
            ("STAP-A with IDR second", &[0x78, 0x00, 0x01, 0x68, 0x00, 0x02, 0x65, 0x88], true),
            ("STAP-A without keyframe", &[0x78, 0x00, 0x01, 0x68, 0x00, 0x01, 0x06], false),
            ("STAP-A truncated size", &[0x78, 0x00], false),
            ("STAP-A size past end", &[0x78, 0x00, 0x09, 0x67, 0x42], false),
            ("STAP-A empty", &[0x78], false),
            ("STAP-A zero-size unit", &[0x78, 0x00, 0x00, 0x00, 0x01, 0x65], true),
            ("FU-A start IDR", &[0x7c, 0x85, 0x88], true),
            ("FU-A middle IDR", &[0x7c, 0x05, 0x88], false),
            ("FU-A start non-IDR", &[0x7c, 0x81, 0x9a], false),
            ("FU-A no header", &[0x7c], false),
            ("empty", &[], false),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(is_h264_keyframe(payload), *expected, "{name}");
            assert_eq!(VideoCodec::H264.is_keyframe(payload), *expected, "{name}");
        }
    }

    #[test]
    fn codec_from_mime() {
        let cases = [
            ("video/VP8", VideoCodec::Vp8),
            ("VIDEO/vp8", VideoCodec::Vp8),
            ("video/H264", VideoCodec::H264),
            ("video/h264", VideoCodec::H264),
            ("video/VP9", VideoCodec::Other),
            ("audio/opus", VideoCodec::Other),
            ("", VideoCodec::Other),
        ];
        for (mime, expected) in cases {
            assert_eq!(VideoCodec::from_mime(mime), expected, "{mime}");
        }
        assert!(!VideoCodec::Other.is_keyframe(&[0x65]));
    }
}
