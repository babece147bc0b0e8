//! SRTP protection of outgoing RTP, in place, for a sender that forwards many streams.
//!
//! `rtc`'s `Context` protects into a freshly allocated buffer (a copy of the packet per call)
//! and finds each SSRC's rollover counter in a SipHash map twice per packet. A shard protects
//! every forwarded copy, so both show in its profile. This sender seals the packet where it was
//! marshalled, with the tag written into room the caller left after it, and keeps the few
//! streams of one connection in a short list inside itself.
//!
//! The ciphers come from the `rtc` crypto provider (ring), keyed once per connection. Session
//! keys are derived as RFC 3711 4.3 says (the AES-CM PRF, key derivation rate 0), and packets
//! are protected as RFC 3711 4.1/4.2 (AES-CM + HMAC-SHA1-80) and RFC 7714 8 (AEAD-AES-128-GCM)
//! say.

use crate::{SrtpKeys, SrtpProfile};
use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, HmacAlgorithm, Mac, RTCCrypto, StreamCipher, StreamCipherAlgorithm,
};

const LABEL_RTP_ENCRYPTION: u8 = 0x00;
const LABEL_RTP_AUTHENTICATION: u8 = 0x01;
const LABEL_RTP_SALT: u8 = 0x02;
/// The fixed RTP header: where the sequence number and SSRC are read from.
const FIXED_HEADER: usize = 12;
/// RFC 3711 3.3.1: a packet index is 48 bits (rollover counter and sequence number).
const MAX_INDEX: u64 = (1 << 48) - 1;
const HMAC_SHA1_80_TAG: usize = 10;
const GCM_TAG: usize = 16;
/// Streams kept in the sender itself: a connection usually sends a few (a video and an audio
/// track per publisher it receives), and these cost no cache miss of their own.
const INLINE_STREAMS: usize = 4;

/// Why a packet was not protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectError {
    /// Shorter than its header plus the tag's room, or the header length is off.
    BadLayout,
    /// The stream sent 2^48 packets: its keys must not be used again.
    IndexExhausted,
    /// The cipher refused (it never does for well-formed input).
    Cipher,
}

enum Cipher {
    Gcm { aead: Box<dyn AeadCipher>, salt: [u8; 12] },
    CmHmac { ctr: Box<dyn StreamCipher>, mac: Box<dyn Mac>, salt: [u8; 14] },
}

/// The highest packet index sent on one SSRC.
#[derive(Clone, Copy, Default)]
struct Stream {
    ssrc: u32,
    highest: u64,
}

pub struct SrtpSender {
    cipher: Cipher,
    inline: [Stream; INLINE_STREAMS],
    inline_len: usize,
    more: Vec<Stream>,
}

impl SrtpSender {
    /// A sender with session keys derived from `keys`, using the default crypto provider.
    pub fn new(keys: &SrtpKeys) -> Result<Self, String> {
        let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let crypto = provider.crypto();
        let derive = |label, len| derive_session_key(crypto, &keys.master_key, &keys.master_salt, label, len);
        let cipher = match keys.profile {
            SrtpProfile::AeadAes128Gcm => {
                let key = derive(LABEL_RTP_ENCRYPTION, 16)?;
                let salt = derive(LABEL_RTP_SALT, 12)?;
                Cipher::Gcm {
                    aead: crypto.new_aead(AeadAlgorithm::Aes128Gcm, &key).map_err(|e| e.to_string())?,
                    salt: salt.try_into().expect("12 bytes derived"),
                }
            }
            SrtpProfile::Aes128CmHmacSha1_80 => {
                let key = derive(LABEL_RTP_ENCRYPTION, 16)?;
                let auth = derive(LABEL_RTP_AUTHENTICATION, 20)?;
                let salt = derive(LABEL_RTP_SALT, 14)?;
                Cipher::CmHmac {
                    ctr: crypto.new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &key).map_err(|e| e.to_string())?,
                    mac: crypto.new_hmac(HmacAlgorithm::Sha1, &auth).map_err(|e| e.to_string())?,
                    salt: salt.try_into().expect("14 bytes derived"),
                }
            }
        };
        Ok(Self { cipher, inline: [Stream::default(); INLINE_STREAMS], inline_len: 0, more: Vec::new() })
    }

    /// Bytes a protected packet has beyond its plain RTP: the room to leave after it.
    pub fn tag_len(&self) -> usize {
        match self.cipher {
            Cipher::Gcm { .. } => GCM_TAG,
            Cipher::CmHmac { .. } => HMAC_SHA1_80_TAG,
        }
    }

    /// Protects the RTP packet in `datagram`: its first `header_len` bytes are the header (with
    /// CSRCs and extensions), then the payload, then [`tag_len`](Self::tag_len) bytes of room
    /// that the tag is written into. On error `datagram` must not be sent.
    pub fn protect(&mut self, datagram: &mut [u8], header_len: usize) -> Result<(), ProtectError> {
        let tag_len = self.tag_len();
        if header_len < FIXED_HEADER || datagram.len() < header_len + tag_len {
            return Err(ProtectError::BadLayout);
        }
        let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        let index = self.index_of(ssrc, seq)?;
        let roc = (index >> 16) as u32;
        let (packet, tag) = datagram.split_at_mut(datagram.len() - tag_len);
        match &mut self.cipher {
            Cipher::Gcm { aead, salt } => {
                // RFC 7714 8.1: 00 00 || SSRC || ROC || SEQ, XORed with the session salt.
                let mut iv = [0u8; 12];
                iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
                iv[6..10].copy_from_slice(&roc.to_be_bytes());
                iv[10..12].copy_from_slice(&seq.to_be_bytes());
                xor_into(&mut iv, salt);
                let (header, payload) = packet.split_at_mut(header_len);
                aead.seal_in_place(&iv, header, payload, tag).map_err(|_| ProtectError::Cipher)
            }
            Cipher::CmHmac { ctr, mac, salt } => {
                // RFC 3711 4.1.1: (salt << 16) XOR (SSRC << 64) XOR (index << 16).
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
                iv[8..14].copy_from_slice(&index.to_be_bytes()[2..8]);
                xor_into(&mut iv, salt);
                ctr.apply_keystream(&iv, &mut packet[header_len..]).map_err(|_| ProtectError::Cipher)?;
                // RFC 3711 4.2: the tag covers the packet and the rollover counter.
                let mut full = [0u8; 20];
                mac.sign(&[packet, &roc.to_be_bytes()], &mut full).map_err(|_| ProtectError::Cipher)?;
                tag.copy_from_slice(&full[..HMAC_SHA1_80_TAG]);
                Ok(())
            }
        }
    }

    /// The packet index of `seq` on `ssrc` (RFC 3711 3.3.1), estimated against the highest
    /// index sent so far, as the receiver will: a retransmission of a packet sent before the
    /// sequence number wrapped keeps the rollover counter it was first sent with.
    fn index_of(&mut self, ssrc: u32, seq: u16) -> Result<u64, ProtectError> {
        let Some(stream) =
            self.inline[..self.inline_len].iter_mut().chain(self.more.iter_mut()).find(|s| s.ssrc == ssrc)
        else {
            self.add(Stream { ssrc, highest: u64::from(seq) });
            return Ok(u64::from(seq));
        };
        let index = estimate_index(stream.highest, seq);
        if index > MAX_INDEX {
            return Err(ProtectError::IndexExhausted);
        }
        stream.highest = stream.highest.max(index);
        Ok(index)
    }

    fn add(&mut self, stream: Stream) {
        if self.inline_len < INLINE_STREAMS {
            self.inline[self.inline_len] = stream;
            self.inline_len += 1;
        } else {
            self.more.push(stream);
        }
    }
}

/// The index whose low 16 bits are `seq` closest to `highest` (RFC 3711 3.3.1's estimate).
pub(crate) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let last = (highest & 0xffff) as i64;
    let delta = i64::from(seq) - last;
    let guessed_roc = if delta > 0x8000 {
        // Far ahead: from before the last wrap (never before the first packet).
        roc.saturating_sub(1)
    } else if delta < -0x8000 {
        roc + 1
    } else {
        roc
    };
    guessed_roc << 16 | u64::from(seq)
}

fn xor_into(block: &mut [u8], salt: &[u8]) {
    for (b, s) in block.iter_mut().zip(salt) {
        *b ^= s;
    }
}

/// RFC 3711 4.3.1/4.3.3 with a key derivation rate of 0: AES-CM keyed with the master key,
/// over `(salt XOR label << 48) << 16` and counting blocks in the last two bytes.
fn derive_session_key(
    crypto: &dyn RTCCrypto,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    len: usize,
) -> Result<Vec<u8>, String> {
    if master_key.len() != 16 || master_salt.len() > 14 {
        return Err(format!("unsupported master key/salt lengths {}/{}", master_key.len(), master_salt.len()));
    }
    let mut out = Vec::with_capacity(len.div_ceil(16) * 16);
    for counter in 0..len.div_ceil(16) as u16 {
        let mut block = [0u8; 16];
        block[..master_salt.len()].copy_from_slice(master_salt);
        block[7] ^= label;
        block[14..].copy_from_slice(&counter.to_be_bytes());
        crypto.block_encrypt(BlockCipherAlgorithm::Aes128, master_key, &mut block).map_err(|e| e.to_string())?;
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
