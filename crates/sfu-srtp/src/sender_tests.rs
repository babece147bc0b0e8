use super::*;
use rtc::rtp::header::{Extension, Header};
use rtc::shared::marshal::{Marshal, MarshalSize};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn keys(profile: SrtpProfile) -> SrtpKeys {
    let salt_len = profile.rtc().salt_len();
    SrtpKeys { profile, master_key: (1..=16).collect(), master_salt: (100..100 + salt_len as u8).collect() }
}

fn packet(ssrc: u32, seq: u16, payload_len: usize) -> rtc::rtp::Packet {
    let header = Header {
        version: 2,
        payload_type: 96,
        sequence_number: seq,
        timestamp: 3000 * u32::from(seq),
        ssrc,
        extension: true,
        extension_profile: 0xbede,
        extensions: vec![Extension { id: 3, payload: bytes::Bytes::from_static(&[1, 2]) }],
        ..Default::default()
    };
    let payload = (0..payload_len).map(|i| (i as u8).wrapping_mul(seq as u8)).collect::<Vec<_>>();
    rtc::rtp::Packet { header, payload: payload.into() }
}

/// `packet` marshalled with room for the tag, then protected.
fn seal(sender: &mut SrtpSender, packet: &rtc::rtp::Packet) -> Vec<u8> {
    let mut datagram = packet.marshal().unwrap().to_vec();
    datagram.resize(datagram.len() + sender.tag_len(), 0);
    sender.protect(&mut datagram, packet.header.marshal_size()).unwrap();
    datagram
}

/// RFC 3711 B.3's key derivation test vectors.
#[test]
fn derives_the_rfc_3711_session_keys() {
    let provider = rtc::crypto::default_provider().unwrap();
    let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let derive = |label, len| derive_session_key(provider.crypto(), &master_key, &master_salt, label, len).unwrap();
    assert_eq!(derive(LABEL_RTP_ENCRYPTION, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(derive(LABEL_RTP_SALT, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(derive(LABEL_RTP_AUTHENTICATION, 20), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
}

/// Byte for byte what the `rtc` stack's own context writes, over a sequence-number wrap and
/// for more streams than the sender keeps inline, so any receiver that reads the stack's
/// packets reads these.
#[test]
fn writes_what_the_stacks_context_writes() {
    for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
        let keys = keys(profile);
        let mut ours = SrtpSender::new(&keys).unwrap();
        let mut theirs = keys.context().unwrap();
        let streams: Vec<(u32, usize)> =
            (0..INLINE_STREAMS as u32 + 2).map(|i| (0x1111_0000 + i, 3 + 500 * i as usize)).collect();
        for seq in (65_530..=65_535).chain(0..6) {
            for &(ssrc, len) in &streams {
                let p = packet(ssrc, seq, len);
                let expected = theirs.encrypt_rtp_with_header(&p.marshal().unwrap(), &p.header).unwrap();
                assert_eq!(seal(&mut ours, &p), &expected[..], "{profile:?} ssrc {ssrc:x} seq {seq}");
            }
        }
    }
}

/// A packet resent after the sequence number wrapped keeps the rollover counter it was first
/// sent with, which is the one a receiver guesses: it opens.
#[test]
fn a_retransmission_from_before_the_wrap_opens() {
    for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
        let keys = keys(profile);
        let mut ours = SrtpSender::new(&keys).unwrap();
        let mut receiver = keys.context().unwrap();
        let first = seal(&mut ours, &packet(9, 65_534, 200));
        receiver.decrypt_rtp(&first).unwrap();
        for seq in [65_535, 0, 1, 2] {
            receiver.decrypt_rtp(&seal(&mut ours, &packet(9, seq, 200))).unwrap();
        }
        // The resent copy is sealed again; the receiver has seen it, but has no replay check.
        let resent = seal(&mut ours, &packet(9, 65_534, 200));
        assert_eq!(resent, first, "{profile:?}: the same index, so the same bytes");
        let opened = receiver.decrypt_rtp(&resent).unwrap();
        assert_eq!(&opened[..], &packet(9, 65_534, 200).marshal().unwrap()[..]);
        // And the stream goes on after it with the new rollover counter.
        receiver.decrypt_rtp(&seal(&mut ours, &packet(9, 3, 200))).unwrap();
    }
}

#[test]
fn estimates_indices_like_a_receiver() {
    assert_eq!(estimate_index(10, 11), 11);
    assert_eq!(estimate_index(65_535, 0), 1 << 16);
    assert_eq!(estimate_index(1 << 16 | 2, 65_534), 65_534);
    assert_eq!(estimate_index(1 << 16 | 40_000, 100), 2 << 16 | 100);
    // Nothing comes before the first rollover.
    assert_eq!(estimate_index(5, 60_000), 60_000);
}

#[test]
fn refuses_a_datagram_without_room_for_the_tag() {
    let mut sender = SrtpSender::new(&keys(SrtpProfile::AeadAes128Gcm)).unwrap();
    let p = packet(1, 1, 10);
    let plain = p.marshal().unwrap().to_vec();
    let mut short = plain.clone();
    assert_eq!(sender.protect(&mut short, p.header.marshal_size()), Err(ProtectError::BadLayout));
    assert_eq!(short, plain, "left as it was");
    let mut roomy = plain.clone();
    roomy.resize(plain.len() + 16, 0);
    assert_eq!(sender.protect(&mut roomy, 4), Err(ProtectError::BadLayout));
}

#[test]
fn refuses_to_reuse_an_exhausted_stream() {
    let mut sender = SrtpSender::new(&keys(SrtpProfile::AeadAes128Gcm)).unwrap();
    sender.add(Stream { ssrc: 5, highest: MAX_INDEX });
    let p = packet(5, 0, 10);
    let mut datagram = p.marshal().unwrap().to_vec();
    datagram.resize(datagram.len() + 16, 0);
    assert_eq!(sender.protect(&mut datagram, p.header.marshal_size()), Err(ProtectError::IndexExhausted));
}
