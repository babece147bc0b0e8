//! What waits to be written on one client's ICE-TCP connection: bounded, and media goes first
//! when it is full.
//!
//! A UDP socket drops what the network cannot carry; a TCP connection queues it, and a client
//! whose downlink is slower than its media would make the server hold ever more of it, each
//! frame later than the last. So the queue is bounded in bytes. Media (RTP) may fill only part of
//! it ([`MEDIA_QUEUE_BYTES`]); the rest is kept for what holds the session together (STUN
//! consent, DTLS, RTCP feedback, data channels), and such a frame that finds no room evicts
//! queued media first. Media dropped here is lost as on a congested UDP path: NACKs and keyframe
//! requests repair it, and the client's bandwidth estimate sees it.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::IoSlice;

use super::framing::frame;

/// Bytes of media a connection's queue may hold: about 0.4 s of a 2.5 Mbit/s video. Beyond it
/// a frame would arrive too late to play.
pub(crate) const MEDIA_QUEUE_BYTES: usize = 128 * 1024;

/// Bytes a connection's queue may hold in all.
pub(crate) const QUEUE_BYTES: usize = 256 * 1024;

/// What a datagram is, for the queue: media can be lost, the rest should not be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameClass {
    /// RTP (SRTP): audio, video, retransmissions, probes.
    Media,
    /// STUN, DTLS (handshake, data channels), RTCP.
    Control,
}

impl FrameClass {
    /// RFC 7983 demultiplexing by the first byte, RTCP told from RTP by its packet type.
    pub fn of(datagram: &[u8]) -> Self {
        match datagram {
            [first, second, ..] if (128..=191).contains(first) && !(192..=223).contains(second) => Self::Media,
            _ => Self::Control,
        }
    }
}

/// Why a datagram for a TCP client was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TcpDrop {
    /// Media found the media share of the queue full.
    MediaQueueFull,
    /// Queued media was taken out to make room for a control frame.
    MediaEvicted,
    /// A control frame found the queue full of control frames.
    QueueFull,
    /// The datagram cannot be framed (over 65535 bytes).
    Unframable,
    /// No connection from that address (it closed meanwhile).
    NoConnection,
}

impl TcpDrop {
    pub const ALL: [TcpDrop; 5] =
        [Self::MediaQueueFull, Self::MediaEvicted, Self::QueueFull, Self::Unframable, Self::NoConnection];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MediaQueueFull => "media_queue_full",
            Self::MediaEvicted => "media_evicted",
            Self::QueueFull => "queue_full",
            Self::Unframable => "unframable",
            Self::NoConnection => "no_connection",
        }
    }
}

/// Frames (length prefix included) in the order they leave.
#[derive(Default)]
pub(crate) struct OutQueue {
    frames: VecDeque<(FrameClass, Bytes)>,
    /// Bytes of the first frame already written: it is no longer evicted.
    written: usize,
    bytes: usize,
    media_bytes: usize,
}

impl OutQueue {
    /// Queues `datagram` as a frame. Returns how many media frames were evicted for it, or why
    /// it was not queued.
    pub fn push(&mut self, datagram: &[u8]) -> Result<usize, TcpDrop> {
        let framed = frame(datagram).ok_or(TcpDrop::Unframable)?;
        let len = framed.len();
        let class = FrameClass::of(datagram);
        let mut evicted = 0;
        match class {
            FrameClass::Media if self.media_bytes + len > MEDIA_QUEUE_BYTES || self.bytes + len > QUEUE_BYTES => {
                return Err(TcpDrop::MediaQueueFull);
            }
            FrameClass::Control if self.bytes + len > QUEUE_BYTES => {
                evicted = self.evict_media(self.bytes + len - QUEUE_BYTES);
                if self.bytes + len > QUEUE_BYTES {
                    return Err(TcpDrop::QueueFull);
                }
            }
            _ => {}
        }
        self.bytes += len;
        if class == FrameClass::Media {
            self.media_bytes += len;
        }
        self.frames.push_back((class, framed));
        Ok(evicted)
    }

    /// Takes media frames out, newest first (the oldest are nearest to leaving), until `needed`
    /// bytes are free or none is left; never the frame being written.
    fn evict_media(&mut self, needed: usize) -> usize {
        let mut freed = 0;
        let mut evicted = 0;
        let mut index = self.frames.len();
        while freed < needed && index > usize::from(self.written > 0) {
            index -= 1;
            if self.frames[index].0 == FrameClass::Media
                && let Some((_, gone)) = self.frames.remove(index)
            {
                freed += gone.len();
                self.bytes -= gone.len();
                self.media_bytes -= gone.len();
                evicted += 1;
            }
        }
        evicted
    }

    /// The bytes to write next, up to `max` frames: the rest of the first frame, then whole ones.
    pub fn slices(&self, max: usize) -> Vec<IoSlice<'_>> {
        self.frames
            .iter()
            .take(max)
            .enumerate()
            .map(|(i, (_, framed))| IoSlice::new(if i == 0 { &framed[self.written..] } else { framed }))
            .collect()
    }

    /// `n` bytes of [`Self::slices`] were written.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some((class, framed)) = self.frames.front() else { return };
            let rest = framed.len() - self.written;
            if n < rest {
                self.written += n;
                return;
            }
            n -= rest;
            let (class, len) = (*class, framed.len());
            self.frames.pop_front();
            self.written = 0;
            self.bytes -= len;
            if class == FrameClass::Media {
                self.media_bytes -= len;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes queued, written ones of the first frame included.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x80;
        p[1] = 96;
        p
    }

    fn rtcp(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x80;
        p[1] = 200;
        p
    }

    /// What would be written, flattened.
    fn written(queue: &mut OutQueue) -> Vec<u8> {
        let bytes: Vec<u8> = queue.slices(usize::MAX).iter().flat_map(|s| s.to_vec()).collect();
        queue.advance(bytes.len());
        bytes
    }

    #[test]
    fn frames_are_classified_by_their_first_bytes() {
        let stun = [0u8, 1, 0, 0];
        let dtls = [22u8, 254, 253];
        for (datagram, class) in [
            (&rtp(12)[..], FrameClass::Media),
            (&rtcp(8)[..], FrameClass::Control),
            (&stun[..], FrameClass::Control),
            (&dtls[..], FrameClass::Control),
            (&[][..], FrameClass::Control),
        ] {
            assert_eq!(FrameClass::of(datagram), class, "{datagram:?}");
        }
    }

    #[test]
    fn media_fills_only_its_share_and_control_still_gets_in() {
        let mut queue = OutQueue::default();
        let packet = rtp(1198);
        let fit = MEDIA_QUEUE_BYTES / 1200;
        for _ in 0..fit {
            assert_eq!(queue.push(&packet), Ok(0));
        }
        assert_eq!(queue.push(&packet), Err(TcpDrop::MediaQueueFull));
        // RTCP and DTLS have the rest of the queue.
        for _ in 0..10 {
            assert_eq!(queue.push(&rtcp(1198)), Ok(0));
        }
        assert_eq!(queue.bytes(), (fit + 10) * 1200);
    }

    #[test]
    fn control_that_finds_no_room_evicts_media_but_never_the_frame_being_written() {
        let mut queue = OutQueue::default();
        let control = rtcp(1198);
        let controls = (QUEUE_BYTES - MEDIA_QUEUE_BYTES) / 1200;
        for _ in 0..controls {
            queue.push(&control).unwrap();
        }
        let medias = MEDIA_QUEUE_BYTES / 1200;
        for _ in 0..medias {
            queue.push(&rtp(1198)).unwrap();
        }
        // Room for a few bytes at most: each control frame now takes a media frame's place.
        assert_eq!(queue.push(&control), Ok(1));
        assert_eq!(queue.push(&control), Ok(1));
        // Only control left once the media is gone: a full queue refuses.
        let mut queue = OutQueue::default();
        queue.push(&rtp(1198)).unwrap();
        queue.advance(10);
        while queue.push(&control).is_ok() {}
        assert_eq!(queue.push(&control), Err(TcpDrop::QueueFull));
        assert_eq!(queue.slices(1)[0].len(), 1190, "the half-written media frame stayed");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut queue = OutQueue::default();
        queue.push(b"\x00\x01abc").unwrap();
        queue.push(&rtp(20)).unwrap();
        let whole: Vec<u8> = queue.slices(usize::MAX).iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(whole.len(), 7 + 22);
        queue.advance(3);
        assert_eq!(queue.slices(1)[0].len(), 4);
        let rest = written(&mut queue);
        assert_eq!(rest, whole[3..]);
        assert!(queue.is_empty());
        assert_eq!(queue.bytes(), 0);
        assert_eq!(queue.push(&vec![0u8; 70_000]), Err(TcpDrop::Unframable));
    }
}
