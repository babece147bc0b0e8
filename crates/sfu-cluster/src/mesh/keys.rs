//! The cluster secret and the keys of one link, derived with HKDF-SHA256 from the secret and both
//! sides' handshake nonces (docs/cluster.md, "Keys"). Keys are new for every connection, live in
//! memory only, are zeroed when dropped and never printed: their `Debug` shows no bytes.

use std::fmt;

use ring::hkdf;
use zeroize::{Zeroize, Zeroizing};

use super::wire::push_field;
use crate::{BootId, NodeId};

/// Fewest bytes `cluster.secret` may have.
pub const MIN_SECRET_LEN: usize = 32;
/// Length of an SRTP master key (AEAD_AES_128_GCM).
pub const SRTP_KEY_LEN: usize = 16;
/// Length of an SRTP master salt (AEAD_AES_128_GCM).
pub const SRTP_SALT_LEN: usize = 12;
/// Length of a control-frame key (AES-128-GCM).
pub const CTL_KEY_LEN: usize = 16;
/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// Starts every HKDF info, so keys of a later layout cannot equal these.
const INFO_PREFIX: &[u8] = b"sfu relay v1";

/// The shared `cluster.secret`: zeroed when dropped, never printed.
#[derive(Clone)]
pub struct ClusterSecret(Zeroizing<Vec<u8>>);

/// `cluster.secret` is shorter than [`MIN_SECRET_LEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster secret has {len} bytes, at least {MIN_SECRET_LEN} are required")]
pub struct SecretTooShort {
    /// The length given.
    pub len: usize,
}

impl ClusterSecret {
    /// Takes the secret's bytes; refuses fewer than [`MIN_SECRET_LEN`] (and zeroes them).
    pub fn new(bytes: Vec<u8>) -> Result<Self, SecretTooShort> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretTooShort { len: bytes.len() });
        }
        Ok(ClusterSecret(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// An SRTP master key and salt for one direction of a link.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    key: [u8; SRTP_KEY_LEN],
    salt: [u8; SRTP_SALT_LEN],
}

impl SrtpKey {
    /// The master key.
    pub fn key(&self) -> &[u8; SRTP_KEY_LEN] {
        &self.key
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8; SRTP_SALT_LEN] {
        &self.salt
    }
}

impl Drop for SrtpKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(..)")
    }
}

/// The AES-128-GCM key sealing one direction's control frames.
#[derive(Clone, PartialEq, Eq)]
pub struct CtlKey([u8; CTL_KEY_LEN]);

impl CtlKey {
    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; CTL_KEY_LEN] {
        &self.0
    }
}

impl Drop for CtlKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for CtlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CtlKey(..)")
    }
}

/// One link's keys as one side sees them: `out` seals what this side sends, `in` opens what it
/// receives. The dialer's `out` keys are the responder's `in` keys and the other way round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkKeys {
    /// Seals the SRTP this side sends on the link.
    pub srtp_out: SrtpKey,
    /// Opens the SRTP the peer sends on the link.
    pub srtp_in: SrtpKey,
    /// Seals the control frames this side sends.
    pub ctl_out: CtlKey,
    /// Opens the control frames the peer sends.
    pub ctl_in: CtlKey,
}

/// Who took part in one handshake and the nonces each chose: everything the keys depend on
/// besides the secret. A is the dialer, B the responder.
#[derive(Clone, Debug)]
pub struct LinkParties<'a> {
    /// The dialer.
    pub node_a: &'a NodeId,
    /// The dialer's boot.
    pub boot_a: &'a BootId,
    /// The responder.
    pub node_b: &'a NodeId,
    /// The responder's boot.
    pub boot_b: &'a BootId,
    /// The dialer's nonce.
    pub nonce_a: &'a [u8; NONCE_LEN],
    /// The responder's nonce.
    pub nonce_b: &'a [u8; NONCE_LEN],
}

/// Which end of the link a side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A: opened the connection (the lower node id).
    Dialer,
    /// B: accepted it.
    Responder,
}

/// An output length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl LinkParties<'_> {
    /// Derives the link's four keys and orients them for `side`.
    pub fn derive(&self, secret: &ClusterSecret, side: Side) -> LinkKeys {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[&self.nonce_a[..], &self.nonce_b[..]].concat());
        let prk = salt.extract(secret.expose());
        let expand = |label: &str, out: &mut [u8]| {
            let mut info = Vec::with_capacity(128);
            info.extend_from_slice(INFO_PREFIX);
            for part in [self.node_a.as_str(), self.boot_a.as_str(), self.node_b.as_str(), self.boot_b.as_str(), label]
            {
                push_field(&mut info, part.as_bytes());
            }
            let info = [&info[..]];
            let okm = prk.expand(&info, Len(out.len())).expect("lengths here are far below HKDF's limit");
            okm.fill(out).expect("the buffer has the length asked for");
        };
        let srtp = |label: &str| {
            let mut both = Zeroizing::new([0u8; SRTP_KEY_LEN + SRTP_SALT_LEN]);
            expand(label, &mut both[..]);
            let mut key = SrtpKey { key: [0; SRTP_KEY_LEN], salt: [0; SRTP_SALT_LEN] };
            key.key.copy_from_slice(&both[..SRTP_KEY_LEN]);
            key.salt.copy_from_slice(&both[SRTP_KEY_LEN..]);
            key
        };
        let ctl = |label: &str| {
            let mut key = CtlKey([0; CTL_KEY_LEN]);
            expand(label, &mut key.0);
            key
        };
        let (a_to_b, b_to_a) = (srtp("srtp a>b"), srtp("srtp b>a"));
        let (ctl_a_to_b, ctl_b_to_a) = (ctl("ctl a>b"), ctl("ctl b>a"));
        match side {
            Side::Dialer => LinkKeys { srtp_out: a_to_b, srtp_in: b_to_a, ctl_out: ctl_a_to_b, ctl_in: ctl_b_to_a },
            Side::Responder => LinkKeys { srtp_out: b_to_a, srtp_in: a_to_b, ctl_out: ctl_b_to_a, ctl_in: ctl_a_to_b },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> ClusterSecret {
        ClusterSecret::new(vec![byte; 32]).unwrap()
    }

    fn derive(secret: &ClusterSecret, nonce_a: [u8; 32], boot_b: &str, side: Side) -> LinkKeys {
        let (a, ba, b, bb) = (NodeId::from("ND_a"), BootId::from("b1"), NodeId::from("ND_b"), BootId::from(boot_b));
        let parties =
            LinkParties { node_a: &a, boot_a: &ba, node_b: &b, boot_b: &bb, nonce_a: &nonce_a, nonce_b: &[9; 32] };
        parties.derive(secret, side)
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        assert_eq!(ClusterSecret::new(vec![1; 31]).unwrap_err(), SecretTooShort { len: 31 });
        assert!(ClusterSecret::new(vec![1; 32]).is_ok());
    }

    #[test]
    fn each_side_sends_with_the_key_the_other_receives_with() {
        let s = secret(7);
        let a = derive(&s, [1; 32], "b2", Side::Dialer);
        let b = derive(&s, [1; 32], "b2", Side::Responder);
        assert_eq!(a.srtp_out, b.srtp_in);
        assert_eq!(a.srtp_in, b.srtp_out);
        assert_eq!(a.ctl_out, b.ctl_in);
        assert_eq!(a.ctl_in, b.ctl_out);
    }

    #[test]
    fn every_label_gives_a_different_key() {
        let k = derive(&secret(7), [1; 32], "b2", Side::Dialer);
        assert_ne!(k.srtp_out.key(), k.srtp_in.key());
        assert_ne!(k.srtp_out.salt(), k.srtp_in.salt());
        assert_ne!(k.ctl_out.bytes(), k.ctl_in.bytes());
        assert_ne!(&k.srtp_out.key()[..], &k.ctl_out.bytes()[..]);
        assert_ne!(&k.srtp_in.key()[..], &k.ctl_in.bytes()[..]);
    }

    #[test]
    fn keys_change_with_the_nonces_the_boots_and_the_secret() {
        let base = derive(&secret(7), [1; 32], "b2", Side::Dialer);
        for other in [
            derive(&secret(7), [2; 32], "b2", Side::Dialer),
            derive(&secret(7), [1; 32], "b3", Side::Dialer),
            derive(&secret(8), [1; 32], "b2", Side::Dialer),
        ] {
            assert_ne!(base.srtp_out, other.srtp_out);
            assert_ne!(base.srtp_in, other.srtp_in);
            assert_ne!(base.ctl_out, other.ctl_out);
            assert_ne!(base.ctl_in, other.ctl_in);
        }
    }

    #[test]
    fn debug_output_shows_no_key_bytes() {
        let k = derive(&secret(7), [1; 32], "b2", Side::Dialer);
        let shown = format!("{k:?} {:?}", secret(7));
        assert_eq!(
            shown,
            "LinkKeys { srtp_out: SrtpKey(..), srtp_in: SrtpKey(..), ctl_out: CtlKey(..), ctl_in: CtlKey(..) } ClusterSecret(..)"
        );
    }
}
