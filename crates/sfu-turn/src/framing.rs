//! What a TURN client sends, told apart by its first two bits (RFC 8656 section 12): `00` a STUN
//! message, `01` a ChannelData message. Over TCP and TLS they come back to back in a stream;
//! [`StreamFramer`] cuts it (ChannelData is padded to a multiple of four bytes there).

/// The STUN header: type, length, magic cookie, transaction id.
pub const STUN_HEADER: usize = 20;
/// The ChannelData header: channel number, length.
pub const CHANNEL_HEADER: usize = 4;
const MAGIC_COOKIE: [u8; 4] = 0x2112_A442u32.to_be_bytes();

/// One message of a client, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    ChannelData,
}

/// The kind of a datagram or frame, or `None` for anything else.
pub fn kind_of(bytes: &[u8]) -> Option<Kind> {
    match bytes.first()? >> 6 {
        0b00 if bytes.len() >= STUN_HEADER && bytes[4..8] == MAGIC_COOKIE => Some(Kind::Stun),
        0b01 if bytes.len() >= CHANNEL_HEADER => Some(Kind::ChannelData),
        _ => None,
    }
}

/// Why a stream is beyond repair: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The next bytes are neither a STUN message nor ChannelData.
    #[error("not a STUN or ChannelData frame")]
    Garbage,
    /// A frame announced a length over the limit.
    #[error("frame of {0} bytes is over the limit")]
    Oversized(usize),
}

/// Cuts a TCP or TLS byte stream into STUN and ChannelData frames. Holds at most one frame
/// under way (up to the limit) plus what one read added.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_frame: usize,
}

impl StreamFramer {
    /// A framer refusing frames longer than `max_frame` bytes (headers and padding included).
    pub fn new(max_frame: usize) -> Self {
        StreamFramer { buf: Vec::new(), max_frame }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame (padding removed from ChannelData), `None` until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(&first) = self.buf.first() else { return Ok(None) };
        if self.buf.len() < CHANNEL_HEADER {
            return if first >> 6 > 1 { Err(FrameError::Garbage) } else { Ok(None) };
        }
        let length = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
        let (total, keep) = match first >> 6 {
            0b00 => {
                if self.buf.len() >= 8 && self.buf[4..8] != MAGIC_COOKIE {
                    return Err(FrameError::Garbage);
                }
                // STUN attributes are padded already, so the length is a multiple of 4.
                if !length.is_multiple_of(4) {
                    return Err(FrameError::Garbage);
                }
                (STUN_HEADER + length, STUN_HEADER + length)
            }
            0b01 => (CHANNEL_HEADER + length.next_multiple_of(4), CHANNEL_HEADER + length),
            _ => return Err(FrameError::Garbage),
        };
        if total > self.max_frame {
            return Err(FrameError::Oversized(total));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut frame: Vec<u8> = self.buf.drain(..total).collect();
        frame.truncate(keep);
        Ok(Some(frame))
    }

    /// Bytes held that are not a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(len: u16) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[9; 12]);
        m.extend(std::iter::repeat_n(0xaa, len as usize));
        m
    }

    #[test]
    fn frames_come_out_whole_whatever_the_reads() {
        let mut stream = stun(8);
        stream.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]); // padded to 8
        stream.extend(stun(0));
        for chunk in [1, 3, 7, 100] {
            let mut f = StreamFramer::new(1500);
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                f.push(piece);
                while let Some(frame) = f.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames, vec![stun(8), vec![0x40, 0, 0, 5, 1, 2, 3, 4, 5], stun(0)], "reads of {chunk}");
            assert_eq!(f.pending(), 0);
        }
    }

    #[test]
    fn garbage_and_oversized_frames_are_errors() {
        // HTTP starts like ChannelData ('G' is 0x47) of an impossible length.
        let mut f = StreamFramer::new(1500);
        f.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::Oversized(4 + 0x5420)));
        // A TLS ClientHello starts like STUN, without the magic cookie.
        let mut f = StreamFramer::new(1500);
        f.push(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
        assert_eq!(f.next_frame(), Err(FrameError::Garbage));
        let mut f = StreamFramer::new(1500);
        f.push(&[0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4]); // STUN type, no magic cookie
        assert_eq!(f.next_frame(), Err(FrameError::Garbage));
        let mut f = StreamFramer::new(1500);
        f.push(&[0x40, 0x00, 0xff, 0xff]);
        assert_eq!(f.next_frame(), Err(FrameError::Oversized(4 + 65536)));
        let mut f = StreamFramer::new(1500);
        f.push(&stun(2000)[..24]);
        assert_eq!(f.next_frame(), Err(FrameError::Oversized(2020)));
        let mut f = StreamFramer::new(1500);
        f.push(&[0xff]);
        assert_eq!(f.next_frame(), Err(FrameError::Garbage));
    }

    #[test]
    fn datagram_kinds() {
        assert_eq!(kind_of(&stun(0)), Some(Kind::Stun));
        assert_eq!(kind_of(&[0x40, 0, 0, 0]), Some(Kind::ChannelData));
        assert_eq!(kind_of(&[0x80, 0, 0, 0]), None); // RTP
        assert_eq!(kind_of(&[0x16, 0xfe, 0xfd]), None); // DTLS, too short for STUN
        assert_eq!(kind_of(&[]), None);
    }
}
