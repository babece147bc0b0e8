//! RFC 4571 framing: on an ICE-TCP connection every datagram travels as a 2-byte big-endian
//! length and that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// The largest frame accepted: what a datagram on a shard's UDP socket can be (its read buffer).
/// Browsers send the same packets over TCP as over UDP (RTP, DTLS records and STUN of at most
/// an MTU), so anything larger is not WebRTC: the connection is closed. Framing alone would allow
/// 65535 bytes, and holding that much per connection for a peer that may never finish it is
/// what an attacker would want.
pub(crate) const MAX_FRAME_LEN: usize = crate::MAX_DATAGRAM_LEN;

/// The length prefix.
const HEADER_LEN: usize = 2;

/// Why a connection's byte stream is not RFC 4571 frames we take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A frame announced more than [`MAX_FRAME_LEN`] bytes.
    Oversized(usize),
    /// A frame of length zero: no datagram is empty.
    Empty,
}

/// Cuts a connection's byte stream into frames, whatever the reads' boundaries: a read may hold
/// part of a frame, several frames, or the end of one and the start of the next. It holds at
/// most one unfinished frame (a length is checked as soon as its two bytes are in), so its
/// buffer stays under a read plus [`MAX_FRAME_LEN`].
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// Bytes read from the connection.
    pub fn extend(&mut self, read: &[u8]) {
        self.buf.extend_from_slice(read);
    }

    /// The next whole frame, taken out; `Ok(None)` until more bytes come. After an error the
    /// connection is to be closed (the decoder stays in error).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.next_len()? else { return Ok(None) };
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The next whole frame, left in place (the node's listener reads a connection's first frame
    /// to route it, and the shard that adopts the connection reads it again).
    pub fn peek_frame(&self) -> Result<Option<&[u8]>, FrameError> {
        let Some(len) = self.next_len()? else { return Ok(None) };
        Ok(self.buf.get(HEADER_LEN..HEADER_LEN + len))
    }

    /// Bytes held: an unfinished frame, or frames not taken yet.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn next_len(&self) -> Result<Option<usize>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else { return Ok(None) };
        match u16::from_be_bytes([header[0], header[1]]) as usize {
            0 => Err(FrameError::Empty),
            len if len > MAX_FRAME_LEN => Err(FrameError::Oversized(len)),
            len => Ok(Some(len)),
        }
    }
}

/// `datagram` as one frame: its length, then itself. None if it cannot be framed (longer than
/// 65535 bytes; nothing the shard sends is).
pub(crate) fn frame(datagram: &[u8]) -> Option<Bytes> {
    let len = u16::try_from(datagram.len()).ok()?;
    let mut framed = BytesMut::with_capacity(HEADER_LEN + datagram.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(datagram);
    Some(framed.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().flat_map(|p| frame(p).unwrap().to_vec()).collect()
    }

    fn drain(decoder: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame()? {
            out.push(frame.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn frames_come_out_whole_whatever_the_reads_boundaries() {
        let payloads: [&[u8]; 3] = [b"stun", &[7u8; 1200], b"x"];
        let stream = framed(&payloads);
        // Every way of cutting the stream in two, and one byte at a time.
        for cut in 0..=stream.len() {
            let mut decoder = FrameDecoder::default();
            decoder.extend(&stream[..cut]);
            let mut got = drain(&mut decoder).unwrap();
            decoder.extend(&stream[cut..]);
            got.extend(drain(&mut decoder).unwrap());
            assert_eq!(got, payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>(), "cut at {cut}");
            assert_eq!(decoder.buffered(), 0);
        }
        let mut decoder = FrameDecoder::default();
        let mut got = Vec::new();
        for byte in &stream {
            decoder.extend(std::slice::from_ref(byte));
            got.extend(drain(&mut decoder).unwrap());
        }
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn several_frames_in_one_read_then_a_partial_one() {
        let mut stream = framed(&[b"one", b"two", b"three"]);
        stream.extend_from_slice(&[0, 5, b'f', b'o']);
        let mut decoder = FrameDecoder::default();
        decoder.extend(&stream);
        assert_eq!(drain(&mut decoder).unwrap(), vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        assert_eq!(decoder.buffered(), 4, "the unfinished frame waits");
        decoder.extend(b"ur!");
        assert_eq!(drain(&mut decoder).unwrap(), vec![b"four!".to_vec()]);
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_length_alone() {
        let mut decoder = FrameDecoder::default();
        decoder.extend(&framed(&[b"ok"]));
        // A 64 KiB frame: only its header has come.
        decoder.extend(&u16::MAX.to_be_bytes());
        assert_eq!(decoder.next_frame(), Ok(Some(Bytes::from_static(b"ok"))));
        assert_eq!(decoder.next_frame(), Err(FrameError::Oversized(65535)));
        assert_eq!(decoder.peek_frame(), Err(FrameError::Oversized(65535)));
        // The largest datagram passes, one byte more does not.
        let mut decoder = FrameDecoder::default();
        decoder.extend(&framed(&[&vec![1u8; MAX_FRAME_LEN]]));
        assert_eq!(decoder.next_frame().unwrap().map(|f| f.len()), Some(MAX_FRAME_LEN));
        decoder.extend(&((MAX_FRAME_LEN + 1) as u16).to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameError::Oversized(MAX_FRAME_LEN + 1)));
    }

    #[test]
    fn an_empty_frame_is_refused() {
        let mut decoder = FrameDecoder::default();
        decoder.extend(&[0, 0, 0, 1, 9]);
        assert_eq!(decoder.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn peeking_leaves_the_frame_for_the_next_reader() {
        let mut decoder = FrameDecoder::default();
        decoder.extend(&[0, 3, b'a']);
        assert_eq!(decoder.peek_frame(), Ok(None));
        decoder.extend(b"bc");
        assert_eq!(decoder.peek_frame(), Ok(Some(&b"abc"[..])));
        assert_eq!(decoder.next_frame(), Ok(Some(Bytes::from_static(b"abc"))));
        assert_eq!(decoder.peek_frame(), Ok(None));
    }

    #[test]
    fn framing_prefixes_the_length() {
        assert_eq!(&frame(b"abc").unwrap()[..], &[0, 3, b'a', b'b', b'c']);
        assert_eq!(frame(&vec![0u8; 65536]), None);
    }
}
