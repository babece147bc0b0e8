use super::*;
use crate::test_rng::Lcg;

/// A descriptor with X set and the given fields: a 15-bit picture ID, TL0PICIDX, and a
/// TID/Y/KEYIDX byte (TID 2, Y set) carrying `key_idx`, followed by a payload byte.
fn full(picture_id: u16, tl0: u8, key_idx: u8) -> Vec<u8> {
    let [high, low] = picture_id.to_be_bytes();
    vec![0x90, I | L | T | K, M | high, low, tl0, 0x80 | 0x20 | key_idx, 0xaa]
}

fn descriptor(picture_id: u16, tl0: u8) -> Vp8Descriptor {
    Vp8Descriptor {
        picture_id: Some(PictureId { value: picture_id, long: true }),
        tl0_pic_idx: Some(tl0),
        key_idx: None,
    }
}

#[test]
fn parses_each_descriptor_form() {
    let cases: &[(&str, &[u8], Option<Vp8Descriptor>)] = &[
        ("no extension", &[0x10, 0x00], Some(Vp8Descriptor::default())),
        ("empty", &[], None),
        ("extension byte missing", &[0x90], None),
        (
            "short picture id",
            &[0x90, I, 0x05, 0x00],
            Some(Vp8Descriptor { picture_id: Some(PictureId { value: 5, long: false }), ..Default::default() }),
        ),
        ("long picture id cut short", &[0x90, I, M | 0x01], None),
        (
            "everything",
            &full(0x1234, 7, 3),
            Some(Vp8Descriptor {
                picture_id: Some(PictureId { value: 0x1234, long: true }),
                tl0_pic_idx: Some(7),
                key_idx: Some(3),
            }),
        ),
        ("TID without KEYIDX", &[0x90, T, 0x40, 0x00], Some(Vp8Descriptor::default())),
        ("TL0PICIDX missing", &[0x90, L], None),
    ];
    for (name, payload, expected) in cases {
        assert_eq!(parse_vp8_descriptor(payload), *expected, "{name}");
    }
}

#[test]
fn apply_writes_new_values_and_keeps_other_bits() {
    let mut payload = full(0x1234, 7, 3);
    let rewrite = Vp8Rewrite { picture_id: Some(0x7ffe), tl0_pic_idx: Some(200), key_idx: Some(31) };
    assert!(rewrite.apply(&mut payload));
    assert_eq!(payload, vec![0x90, I | L | T | K, M | 0x7f, 0xfe, 200, 0x80 | 0x20 | 31, 0xaa]);

    // A 7-bit picture ID stays 7 bits: the payload keeps its length.
    let mut short = vec![0x90, I, 0x05, 0xaa];
    assert!(Vp8Rewrite { picture_id: Some(0x1ff), ..Default::default() }.apply(&mut short));
    assert_eq!(short, vec![0x90, I, 0x7f, 0xaa]);

    // Fields the packet does not carry are not invented.
    let mut plain = vec![0x10, 0xaa];
    assert!(Vp8Rewrite { picture_id: Some(9), tl0_pic_idx: Some(9), key_idx: Some(9) }.apply(&mut plain));
    assert_eq!(plain, vec![0x10, 0xaa]);

    assert!(!Vp8Rewrite::default().apply(&mut [0x90]));
}

#[test]
fn a_switch_continues_the_numbering() {
    let mut munger = Vp8Munger::default();
    // The first stream keeps its own numbers.
    munger.switch_to(&descriptor(100, 10));
    assert_eq!(
        munger.rewrite(&descriptor(100, 10)),
        Vp8Rewrite { picture_id: Some(100), tl0_pic_idx: Some(10), key_idx: None }
    );
    assert_eq!(munger.rewrite(&descriptor(101, 10)).picture_id, Some(101));
    assert_eq!(munger.rewrite(&descriptor(102, 11)).tl0_pic_idx, Some(11));

    // Another layer, numbered from elsewhere: its keyframe follows picture 102 and TL0 11.
    munger.switch_to(&descriptor(30_000, 250));
    assert_eq!(
        munger.rewrite(&descriptor(30_000, 250)),
        Vp8Rewrite { picture_id: Some(103), tl0_pic_idx: Some(12), key_idx: None }
    );
    assert_eq!(
        munger.rewrite(&descriptor(30_001, 251)),
        Vp8Rewrite { picture_id: Some(104), tl0_pic_idx: Some(13), key_idx: None }
    );
    // The output wraps at 15 bits: the input picture that maps past 0x7fff comes out as 0.
    assert_eq!(munger.rewrite(&descriptor((30_000 + 0x8000 - 103) & 0x7fff, 252)).picture_id, Some(0));
    // TL0PICIDX wraps at 8 bits: input 250 + 256 - 12 - 1 comes out as 255.
    assert_eq!(munger.rewrite(&descriptor(1, 250u8.wrapping_add(243))).tl0_pic_idx, Some(255));

    // A late packet does not move the continuation point back.
    let mut munger = Vp8Munger::default();
    munger.switch_to(&descriptor(500, 1));
    munger.rewrite(&descriptor(505, 3));
    munger.rewrite(&descriptor(503, 2));
    munger.switch_to(&descriptor(9, 9));
    assert_eq!(
        munger.rewrite(&descriptor(9, 9)),
        Vp8Rewrite { picture_id: Some(506), tl0_pic_idx: Some(4), key_idx: None }
    );
}

#[test]
fn key_idx_and_short_picture_ids_continue_too() {
    let short = |value: u16, key_idx: u8| Vp8Descriptor {
        picture_id: Some(PictureId { value, long: false }),
        tl0_pic_idx: None,
        key_idx: Some(key_idx),
    };
    let mut munger = Vp8Munger::default();
    munger.switch_to(&short(126, 30));
    munger.rewrite(&short(126, 30));
    assert_eq!(
        munger.rewrite(&short(127, 31)),
        Vp8Rewrite { picture_id: Some(127), tl0_pic_idx: None, key_idx: Some(31) }
    );
    munger.switch_to(&short(40, 2));
    // 127 + 1 wraps to 0 in 7 bits; KEYIDX 31 + 1 wraps to 0 in 5 bits.
    assert_eq!(munger.rewrite(&short(40, 2)), Vp8Rewrite { picture_id: Some(0), tl0_pic_idx: None, key_idx: Some(0) });
}

#[test]
fn hostile_payloads_never_panic() {
    let mut rng = Lcg::new(7);
    for _ in 0..20_000 {
        let len = rng.below(8) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let parsed = parse_vp8_descriptor(&payload);
        let rewrite = Vp8Rewrite { picture_id: Some(rng.next() as u16), tl0_pic_idx: Some(1), key_idx: Some(2) };
        let before = payload.len();
        assert_eq!(rewrite.apply(&mut payload), parsed.is_some());
        assert_eq!(payload.len(), before);
        if parsed.is_some() {
            // What was written reads back.
            let again = parse_vp8_descriptor(&payload).unwrap();
            if let Some(id) = again.picture_id {
                assert_eq!(id.value, rewrite.picture_id.unwrap() & id.mask());
            }
        }
    }
}
