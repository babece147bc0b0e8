//! A publisher's RTP as the shard reads it once SRTP has opened it: the header and its
//! extensions, the audio level, the keyframe flag and the VP8 descriptor, the uplink's loss
//! bookkeeping, and the packet written out again for a subscriber.

use bytes::Bytes;
use rtc::shared::marshal::{Marshal, Unmarshal};
use sfu_core::{UplinkNacks, VideoCodec, parse_audio_level, parse_vp8_descriptor};
use std::time::{Duration, Instant};

/// Each input is one or more packets, each a big-endian length (two bytes) and then the packet.
pub fn rtp_packet(data: &[u8]) {
    let start = Instant::now();
    let mut nacks = UplinkNacks::new();
    let mut rest = data;
    let mut n = 0u32;
    while let [high, low, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        rest = after;
        n += 1;
        read(datagram, &mut nacks, start + Duration::from_millis(u64::from(n) * 20));
    }
}

fn read(datagram: &[u8], nacks: &mut UplinkNacks, now: Instant) {
    let Ok(packet) = rtc::rtp::Packet::unmarshal(&mut Bytes::copy_from_slice(datagram)) else { return };
    for id in 1..=14 {
        if let Some(value) = packet.header.get_extension(id) {
            let _ = parse_audio_level(&value);
            let _ = std::str::from_utf8(&value);
        }
    }
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
        let _ = codec.is_keyframe(&packet.payload);
    }
    let _ = parse_vp8_descriptor(&packet.payload);
    nacks.on_packet(packet.header.sequence_number, now);
    let asked = nacks.poll_nacks(now);
    assert!(asked.len() <= sfu_core::uplink_nacks::MAX_MISSING, "{} NACKed at once", asked.len());
    // What is forwarded is this packet written out again: it must read back the same.
    let Ok(written) = packet.marshal() else { return };
    let again = rtc::rtp::Packet::unmarshal(&mut written.clone()).expect("a packet written out reads back");
    let (a, b) = (&packet.header, &again.header);
    assert_eq!(
        (a.ssrc, a.sequence_number, a.timestamp, a.payload_type, a.marker),
        (b.ssrc, b.sequence_number, b.timestamp, b.payload_type, b.marker)
    );
    assert_eq!(packet.payload, again.payload, "payload");
}
