//! Keyframe detection and VP8 descriptor rewriting, on any payload of any codec.

use sfu_core::{PictureId, VideoCodec, Vp8Munger, parse_vp8_descriptor, vp8_keyframe_size};

const CODECS: [&str; 4] = ["video/VP8", "video/H264", "video/VP9", "video/AV1"];

/// The first byte picks the codec; the rest is one payload.
pub fn keyframe(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else { return };
    let codec = VideoCodec::from_mime(CODECS[usize::from(pick) % CODECS.len()]);
    let keyframe = codec.is_keyframe(payload);
    if let Some((width, height)) = vp8_keyframe_size(payload) {
        assert!(width > 0 && height > 0, "a keyframe of {width}x{height}");
    }
    let Some(descriptor) = parse_vp8_descriptor(payload) else { return };
    // Renumbered as if it followed another stream's packets: the fields it carries take the new
    // values, and nothing else in the payload moves.
    let mut munger = Vp8Munger::default();
    let earlier = sfu_core::Vp8Descriptor {
        picture_id: Some(PictureId { value: 0x1234, long: true }),
        tl0_pic_idx: Some(7),
        key_idx: Some(3),
    };
    munger.rewrite(&earlier);
    munger.switch_to(&descriptor);
    let rewrite = munger.rewrite(&descriptor);
    let mut rewritten = payload.to_vec();
    assert!(rewrite.apply(&mut rewritten), "a descriptor that parses can be rewritten");
    let after = parse_vp8_descriptor(&rewritten).expect("a rewritten descriptor still parses");
    assert_eq!(after.picture_id.map(|p| p.value), rewrite.picture_id, "picture id written");
    assert_eq!(after.picture_id.map(|p| p.long), descriptor.picture_id.map(|p| p.long), "picture id length kept");
    assert_eq!(after.tl0_pic_idx, rewrite.tl0_pic_idx, "TL0PICIDX written");
    assert_eq!(after.key_idx, rewrite.key_idx, "KEYIDX written");
    assert_eq!(rewritten.len(), payload.len());
    if codec == VideoCodec::Vp8 {
        assert_eq!(codec.is_keyframe(&rewritten), keyframe, "renumbering changed what the frame is");
    }
}
