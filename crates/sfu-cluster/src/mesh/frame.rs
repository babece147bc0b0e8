//! Framing of the control connection, sans-IO: a u32 big-endian length and a body. During the
//! handshake bodies are plain [`super::handshake::HandshakeMessage`]s; after it every body is
//! sealed with AES-128-GCM under its direction's control key, its nonce the count of frames
//! sealed before it. The counter is never sent: each side knows which frame comes next, so a
//! replayed, reordered, dropped or forged frame does not open, and the link is closed.

use bytes::{Buf, BytesMut};
use ring::aead;

use super::keys::CtlKey;

/// Longest frame body after the handshake.
pub const MAX_FRAME_LEN: usize = 1 << 20;
/// Longest frame body during the handshake: a `Hello` is small, and an unauthenticated peer
/// should not make this node hold a megabyte per connection.
pub const MAX_HANDSHAKE_FRAME_LEN: usize = 64 * 1024;
/// Bytes the AEAD tag adds to a sealed body.
pub const TAG_LEN: usize = 16;
/// Longest plaintext that fits a sealed frame.
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

const LEN_PREFIX: usize = 4;

/// A frame that cannot be read. Either way the connection is closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the limit: a protocol error.
    #[error("frame of {len} bytes, at most {max} allowed")]
    TooLong {
        /// The length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A sealed body did not open: tampered, forged, replayed, reordered, or sealed under
    /// another key.
    #[error("frame {counter} does not open")]
    Open {
        /// The frame counter it was opened with.
        counter: u64,
    },
    /// The frame counter is exhausted (after 2^64 frames); the link must be redone.
    #[error("frame counter exhausted")]
    CounterExhausted,
}

/// Splits a byte stream into frame bodies: push what arrives, pop whole frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_len: usize,
}

impl FrameDecoder {
    /// A decoder refusing bodies longer than `max_len`.
    pub fn new(max_len: usize) -> Self {
        FrameDecoder { buf: BytesMut::new(), max_len }
    }

    /// Changes the limit (raised once the handshake is over); bytes already pushed are kept.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes pushed and not yet popped.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame's body, `None` until one has arrived. An overlong length is an
    /// error as soon as its prefix is in, before any of its body is buffered.
    pub fn pop(&mut self) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = self.buf.get(..LEN_PREFIX) else { return Ok(None) };
        let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLong { len, max: self.max_len });
        }
        if self.buf.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        self.buf.advance(LEN_PREFIX);
        Ok(Some(self.buf.split_to(len)))
    }
}

/// A frame with a plain body (the handshake's).
pub fn plain_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(LEN_PREFIX + body.len());
    frame.extend_from_slice(&u32::try_from(body.len()).expect("bodies are capped far below 4 GiB").to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

fn nonce(counter: u64) -> aead::Nonce {
    let mut bytes = [0u8; aead::NONCE_LEN];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    aead::Nonce::assume_unique_for_key(bytes)
}

fn aead_key(key: &CtlKey) -> aead::LessSafeKey {
    aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, key.bytes()).expect("16 bytes for AES-128"))
}

/// Seals the frames one side sends, counting them.
pub struct FrameSealer {
    key: aead::LessSafeKey,
    counter: u64,
}

impl FrameSealer {
    /// A sealer under this direction's control key, its first frame number 0.
    pub fn new(key: &CtlKey) -> Self {
        FrameSealer { key: aead_key(key), counter: 0 }
    }

    /// The whole frame (length prefix and sealed body) for `plaintext`, which must be at most
    /// [`MAX_PLAINTEXT_LEN`] long (the caller checks; longer is a bug and panics).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, FrameError> {
        assert!(plaintext.len() <= MAX_PLAINTEXT_LEN, "a control message of {} bytes", plaintext.len());
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(FrameError::CounterExhausted)?;
        let sealed_len = plaintext.len() + TAG_LEN;
        let mut frame = Vec::with_capacity(LEN_PREFIX + sealed_len);
        frame.extend_from_slice(&(sealed_len as u32).to_be_bytes());
        frame.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), aead::Aad::empty(), &mut frame[LEN_PREFIX..])
            .expect("AES-GCM seals any length below 64 GiB");
        frame.extend_from_slice(tag.as_ref());
        Ok(frame)
    }
}

/// Opens the frames one side receives, in order.
pub struct FrameOpener {
    key: aead::LessSafeKey,
    counter: u64,
    /// A frame failed to open: the stream is untrustworthy from there on.
    failed: bool,
}

impl FrameOpener {
    /// An opener under the peer's direction's control key, expecting frame 0 first.
    pub fn new(key: &CtlKey) -> Self {
        FrameOpener { key: aead_key(key), counter: 0, failed: false }
    }

    /// Opens the next frame body in place and returns its plaintext. After an error nothing
    /// opens any more: the link is to be closed.
    pub fn open(&mut self, mut body: BytesMut) -> Result<BytesMut, FrameError> {
        let counter = self.counter;
        let next = counter.checked_add(1).ok_or(FrameError::CounterExhausted)?;
        if self.failed {
            return Err(FrameError::Open { counter });
        }
        let Ok(plaintext) = self.key.open_in_place(nonce(counter), aead::Aad::empty(), &mut body) else {
            self.failed = true;
            return Err(FrameError::Open { counter });
        };
        let len = plaintext.len();
        body.truncate(len);
        self.counter = next;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::keys::{LinkParties, Side};

    fn keys() -> (CtlKey, CtlKey) {
        let secret = crate::mesh::keys::ClusterSecret::new(vec![3; 32]).unwrap();
        let (a, b) = (crate::NodeId::from("ND_a"), crate::NodeId::from("ND_b"));
        let (ba, bb) = (crate::BootId::from("1"), crate::BootId::from("2"));
        let parties =
            LinkParties { node_a: &a, boot_a: &ba, node_b: &b, boot_b: &bb, nonce_a: &[1; 32], nonce_b: &[2; 32] };
        let k = parties.derive(&secret, Side::Dialer);
        (k.ctl_out.clone(), k.ctl_in.clone())
    }

    /// Frames sealed by A, as a decoder at B pops them.
    fn decode_all(bytes: &[u8]) -> Vec<BytesMut> {
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(bytes);
        std::iter::from_fn(|| decoder.pop().unwrap()).collect()
    }

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_cut() {
        let stream: Vec<u8> = [plain_frame(b"one"), plain_frame(b""), plain_frame(&[7; 300])].concat();
        for step in [1, 2, 3, 5, 64, stream.len()] {
            let mut decoder = FrameDecoder::new(1000);
            let mut bodies = Vec::new();
            for chunk in stream.chunks(step) {
                decoder.push(chunk);
                while let Some(body) = decoder.pop().unwrap() {
                    bodies.push(body.to_vec());
                }
            }
            assert_eq!(bodies, [b"one".to_vec(), vec![], vec![7; 300]], "step {step}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn truncated_input_waits_for_the_rest() {
        let frame = plain_frame(b"hello");
        let mut decoder = FrameDecoder::new(100);
        decoder.push(&frame[..2]);
        assert_eq!(decoder.pop(), Ok(None));
        decoder.push(&frame[2..frame.len() - 1]);
        assert_eq!(decoder.pop(), Ok(None));
        decoder.push(&frame[frame.len() - 1..]);
        assert_eq!(decoder.pop().unwrap().unwrap(), &b"hello"[..]);
    }

    #[test]
    fn an_oversized_length_is_an_error_before_its_body_arrives() {
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        decoder.push(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        assert_eq!(decoder.pop(), Err(FrameError::TooLong { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN }));
        let mut decoder = FrameDecoder::new(MAX_HANDSHAKE_FRAME_LEN);
        decoder.push(&plain_frame(&vec![0; MAX_HANDSHAKE_FRAME_LEN + 1])[..4]);
        assert!(matches!(decoder.pop(), Err(FrameError::TooLong { .. })));
        // Exactly the limit is fine.
        let mut decoder = FrameDecoder::new(10);
        decoder.push(&plain_frame(&[1; 10]));
        assert_eq!(decoder.pop().unwrap().unwrap().len(), 10);
    }

    #[test]
    fn sealed_frames_open_in_order_on_the_other_side() {
        let (a_out, _) = keys();
        let mut sealer = FrameSealer::new(&a_out);
        let stream: Vec<u8> =
            [sealer.seal(b"first").unwrap(), sealer.seal(b"").unwrap(), sealer.seal(b"third").unwrap()].concat();
        assert!(!stream.windows(5).any(|w| w == b"first"), "the plaintext is not on the wire");
        let mut opener = FrameOpener::new(&a_out);
        let opened: Vec<Vec<u8>> = decode_all(&stream).into_iter().map(|b| opener.open(b).unwrap().to_vec()).collect();
        assert_eq!(opened, [b"first".to_vec(), vec![], b"third".to_vec()]);
    }

    #[test]
    fn a_tampered_frame_does_not_open() {
        let (a_out, _) = keys();
        for flip in [4, 8, 4 + 5 + TAG_LEN - 1] {
            let mut frame = FrameSealer::new(&a_out).seal(b"hello").unwrap();
            frame[flip] ^= 1;
            let body = decode_all(&frame).pop().unwrap();
            assert_eq!(FrameOpener::new(&a_out).open(body), Err(FrameError::Open { counter: 0 }), "byte {flip}");
        }
    }

    #[test]
    fn replayed_reordered_or_wrong_direction_frames_do_not_open() {
        let (a_out, a_in) = keys();
        let mut sealer = FrameSealer::new(&a_out);
        let (f0, f1) = (sealer.seal(b"zero").unwrap(), sealer.seal(b"one").unwrap());

        // Replay: frame 0 again where frame 1 is due.
        let mut opener = FrameOpener::new(&a_out);
        opener.open(decode_all(&f0).pop().unwrap()).unwrap();
        assert_eq!(opener.open(decode_all(&f0).pop().unwrap()), Err(FrameError::Open { counter: 1 }));
        // After a failure nothing opens any more, not even the frame that was due.
        assert_eq!(opener.open(decode_all(&f1).pop().unwrap()), Err(FrameError::Open { counter: 1 }));

        // Reordered: frame 1 first.
        let mut opener = FrameOpener::new(&a_out);
        assert_eq!(opener.open(decode_all(&f1).pop().unwrap()), Err(FrameError::Open { counter: 0 }));

        // A frame reflected back at its sender (opened with the other direction's key).
        let mut own = FrameOpener::new(&a_in);
        assert_eq!(own.open(decode_all(&f0).pop().unwrap()), Err(FrameError::Open { counter: 0 }));

        // A frame too short to hold a tag.
        let mut opener = FrameOpener::new(&a_out);
        assert_eq!(opener.open(BytesMut::from(&b"short"[..])), Err(FrameError::Open { counter: 0 }));
    }
}
