//! The SRTP master keys of a peer connection, learned while the `rtc` stack's DTLS handshake
//! derives them, so media can be protected or opened outside the stack's pipeline: the server's
//! shards protect forwarded packets themselves, and the load harness's subscribers open what they
//! receive without the stack's read path.
//!
//! `rtc` keeps its SRTP contexts private, but it builds them with the crypto provider it is
//! given. SRTP's key derivation (RFC 3711 4.3.3) is AES in counter mode keyed with the master
//! key over a block made from the master salt: `salt XOR (label << 64) || counter`. A provider
//! that wraps the default one and notes those block encryptions therefore sees every master key
//! and salt go by. Everything happens on the caller's thread, inside the `handle_read` that
//! completes the handshake, so the notes are thread-local and read right after that call.
//!
//! [`SrtpSender`] then protects a connection's outgoing media with those keys, in place.

mod sender;
pub use sender::{ProtectError, SrtpSender};

use rtc::crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto, RTCCryptoProvider,
    RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};
use rtc::srtp::context::Context;
use rtc::srtp::option::ContextOption;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::cell::RefCell;
use std::sync::Arc;

/// The SRTCP encryption-key label: its derivation differs from the first one (label 0) only in
/// byte 7 of the input block, which is how a master key is told from any other AES key.
const LABEL_SRTCP_ENCRYPTION: u8 = 0x03;
/// Notes kept at most between two reads (a handshake makes about a dozen).
const MAX_NOTES: usize = 256;

/// One crypto call worth remembering.
#[derive(Clone, Debug, PartialEq)]
enum Note {
    /// AES-128 over one block: SRTP key derivation (or something else keyed with AES).
    Block { key: Vec<u8>, input: [u8; 16] },
    /// A keyed AEAD cipher was made (after a derivation: the profile is AES-GCM).
    Aead,
    /// A keyed counter-mode cipher was made (after a derivation: the profile is AES-CM).
    Stream,
}

thread_local! {
    static NOTES: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
}

fn note(entry: Note) {
    NOTES.with(|notes| {
        let mut notes = notes.borrow_mut();
        if notes.len() < MAX_NOTES {
            notes.push(entry);
        }
    });
}

/// The SRTP protection profiles the server's DTLS offers (see peer_factory): the two that every
/// browser supports, and that key derivation alone can tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpProfile {
    AeadAes128Gcm,
    Aes128CmHmacSha1_80,
}

impl SrtpProfile {
    pub fn rtc(self) -> ProtectionProfile {
        match self {
            Self::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Self::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        }
    }
}

/// The master key material of one direction of an SRTP session.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub profile: SrtpProfile,
    pub master_key: Vec<u8>,
    pub master_salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl SrtpKeys {
    /// An SRTP context for these keys, with the default provider (whose calls are not noted).
    pub fn context(&self) -> Result<Context, String> {
        self.build_context(None, None)
    }

    /// A context for opening what the other side sends, refusing replays within the same
    /// windows as the stack's own (64 packets for SRTP and for SRTCP).
    pub fn receiving_context(&self) -> Result<Context, String> {
        const REPLAY_WINDOW: usize = 64;
        self.receiving_context_with_window(REPLAY_WINDOW)
    }

    /// A context for opening what the other side sends, refusing replays within `window`
    /// packets per SSRC (SRTP and SRTCP alike). A wider window lets retransmissions that come
    /// late, on their original sequence number, still open.
    pub fn receiving_context_with_window(&self, window: usize) -> Result<Context, String> {
        self.build_context(
            Some(rtc::srtp::option::srtp_replay_protection(window)),
            Some(rtc::srtp::option::srtcp_replay_protection(window)),
        )
    }

    fn build_context(&self, srtp: Option<ContextOption>, srtcp: Option<ContextOption>) -> Result<Context, String> {
        let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        Context::new(&self.master_key, &self.master_salt, self.profile.rtc(), srtp, srtcp, provider.crypto())
            .map_err(|e| e.to_string())
    }
}

/// Both directions' keys from one completed handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// What this side sends with.
    pub local: SrtpKeys,
    /// What the other side sends with (this side opens its packets with them).
    pub remote: Option<SrtpKeys>,
}

/// Takes this thread's notes and returns the keys a handshake derived since the last call. The
/// stack derives its local context first, then the remote one, so the first master key noted
/// is ours.
pub fn take_session_keys() -> Option<SessionKeys> {
    let notes = NOTES.with(|notes| {
        let mut notes = notes.borrow_mut();
        if notes.is_empty() { None } else { Some(std::mem::take(&mut *notes)) }
    })?;
    let mut keys = master_keys(&notes).into_iter();
    Some(SessionKeys { local: keys.next()?, remote: keys.next() })
}

/// Whether anything is noted (cheap: checked after every datagram).
pub fn has_notes() -> bool {
    NOTES.with(|notes| !notes.borrow().is_empty())
}

/// Every SRTP master key in `notes`, in the order their derivations started.
fn master_keys(notes: &[Note]) -> Vec<SrtpKeys> {
    let mut found: Vec<SrtpKeys> = Vec::new();
    for (i, entry) in notes.iter().enumerate() {
        let Note::Block { key, input } = entry else { continue };
        if key.len() != 16 || found.iter().any(|k| &k.master_key == key) {
            continue;
        }
        // The first block of a derivation (label 0, counter 0) and, later, the same block with
        // the SRTCP label: only SRTP's key derivation makes that pair.
        let mut srtcp = *input;
        srtcp[7] ^= LABEL_SRTCP_ENCRYPTION;
        let derives = input[14..] == [0, 0]
            && notes[i + 1..].iter().any(|n| matches!(n, Note::Block { key: k, input: b } if k == key && *b == srtcp));
        if !derives {
            continue;
        }
        let cipher = notes[i + 1..].iter().find(|n| matches!(n, Note::Aead | Note::Stream));
        let profile = match cipher {
            Some(Note::Aead) => SrtpProfile::AeadAes128Gcm,
            Some(Note::Stream) => SrtpProfile::Aes128CmHmacSha1_80,
            _ => continue,
        };
        found.push(SrtpKeys {
            profile,
            master_key: key.clone(),
            master_salt: input[..profile.rtc().salt_len()].to_vec(),
        });
    }
    found
}

/// The default crypto provider, with SRTP key derivations noted for [`take_session_keys`].
pub struct KeyNotingProvider {
    inner: Arc<dyn RTCCryptoProvider>,
    crypto: NotingCrypto,
}

impl KeyNotingProvider {
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        let inner = rtc::crypto::default_provider()?;
        Ok(Arc::new(Self { crypto: NotingCrypto { inner: inner.clone() }, inner }))
    }
}

impl RTCCryptoProvider for KeyNotingProvider {
    fn name(&self) -> &'static str {
        "sfu-key-noting"
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }
    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

struct NotingCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
}

impl RTCCrypto for NotingCrypto {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }
    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }
    fn block_encrypt(&self, algorithm: BlockCipherAlgorithm, key: &[u8], block: &mut [u8]) -> Result<(), CryptoError> {
        if let Ok(input) = <[u8; 16]>::try_from(&*block) {
            note(Note::Block { key: key.to_vec(), input });
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }
    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }
    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        note(Note::Stream);
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }
    fn new_aead(&self, algorithm: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, CryptoError> {
        note(Note::Aead);
        self.inner.crypto().new_aead(algorithm, key)
    }
    fn new_cbc(&self, algorithm: CbcAlgorithm, key: &[u8]) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }
    fn start_key_exchange(&self, algorithm: KeyExchangeAlgorithm) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }
    fn generate_signing_key(&self, scheme: SignatureScheme) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }
    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }
    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.crypto().verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;
    use rtc::shared::marshal::Marshal;

    /// Builds SRTP contexts the way the stack does (through the noting provider), then checks
    /// that a context rebuilt from the noted keys writes packets the stack's peer can read.
    fn round_trip(ours: SrtpProfile) {
        let profile = ours.rtc();
        let provider = KeyNotingProvider::new().unwrap();
        let _ = take_session_keys();
        let (key, salt) = (vec![0x5a; 16], (0..profile.salt_len() as u8).collect::<Vec<_>>());
        let (remote_key, remote_salt) = (vec![0x33; 16], vec![0x11; profile.salt_len()]);
        let _local = Context::new(&key, &salt, profile, None, None, provider.crypto()).unwrap();
        let mut peer_view = Context::new(&key, &salt, profile, None, None, provider.crypto()).unwrap();
        let _remote = Context::new(&remote_key, &remote_salt, profile, None, None, provider.crypto()).unwrap();

        let session = take_session_keys().expect("keys noted");
        let remote = session.remote.expect("remote keys noted");
        assert_eq!((remote.master_key, remote.master_salt), (remote_key, remote_salt));
        let keys = session.local;
        assert_eq!(keys.profile, ours);
        assert_eq!(keys.master_key, key);
        assert_eq!(keys.master_salt, salt);
        assert!(take_session_keys().is_none(), "notes are consumed");

        let mut ours = keys.context().unwrap();
        let packet = rtc::rtp::Packet {
            header: Header {
                version: 2,
                payload_type: 96,
                sequence_number: 7,
                timestamp: 9,
                ssrc: 42,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(b"forwarded media"),
        };
        let sealed = ours.encrypt_rtp(&packet.marshal().unwrap()).unwrap();
        let opened = peer_view.decrypt_rtp(&sealed).unwrap();
        assert!(opened.ends_with(b"forwarded media"));
    }

    #[test]
    fn notes_gcm_keys() {
        round_trip(SrtpProfile::AeadAes128Gcm);
    }

    #[test]
    fn notes_cm_hmac_keys() {
        round_trip(SrtpProfile::Aes128CmHmacSha1_80);
    }

    #[test]
    fn a_wider_window_opens_a_packet_a_default_one_refuses_as_too_old() {
        let keys = SrtpKeys { profile: SrtpProfile::AeadAes128Gcm, master_key: vec![7; 16], master_salt: vec![8; 12] };
        let mut sender = keys.context().unwrap();
        let seal = |sender: &mut Context, seq: u16| {
            let header = Header { version: 2, payload_type: 96, sequence_number: seq, ssrc: 5, ..Default::default() };
            let packet = rtc::rtp::Packet { header, payload: bytes::Bytes::from_static(b"media") };
            sender.encrypt_rtp(&packet.marshal().unwrap()).unwrap()
        };
        let late = seal(&mut sender, 1);
        let newer: Vec<_> = (2..=500).map(|seq| seal(&mut sender, seq)).collect();
        let mut narrow = keys.receiving_context().unwrap();
        let mut wide = keys.receiving_context_with_window(1024).unwrap();
        for sealed in &newer {
            narrow.decrypt_rtp(sealed).unwrap();
            wide.decrypt_rtp(sealed).unwrap();
        }
        assert!(narrow.decrypt_rtp(&late).is_err(), "499 packets behind: outside a 64-packet window");
        assert!(wide.decrypt_rtp(&late).is_ok(), "inside a 1024-packet window");
        assert!(wide.decrypt_rtp(&late).is_err(), "but only once");
    }

    #[test]
    fn ignores_aes_blocks_that_are_not_a_derivation() {
        let provider = KeyNotingProvider::new().unwrap();
        let _ = take_session_keys();
        let mut block = [1u8; 16];
        provider.crypto().block_encrypt(BlockCipherAlgorithm::Aes128, &[2u8; 16], &mut block).unwrap();
        provider.crypto().new_aead(AeadAlgorithm::Aes128Gcm, &[3u8; 16]).unwrap();
        assert!(take_session_keys().is_none());
    }
}
