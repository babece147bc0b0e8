//! Stateless nonces: `<expiry, 16 hex digits><MAC, 16 hex digits>`, the MAC an HMAC-SHA1 of the
//! expiry and the client's IP under a key made at start. Checking one needs no table, so a
//! flood of unauthenticated requests costs the server no memory.

use ring::hmac;
use std::net::IpAddr;

/// How long a nonce is accepted (RFC 8656 suggests about an hour).
pub const NONCE_LIFETIME_SECS: u64 = 3600;
const NONCE_LEN: usize = 32;

/// Why a nonce is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not one of ours (or made for another address): answered like a missing nonce.
    Invalid,
    /// Ours, but past its lifetime: 438 Stale Nonce with a new one.
    Stale,
}

pub struct Nonces {
    key: hmac::Key,
}

impl Nonces {
    pub fn new(key: &[u8; 32]) -> Self {
        Nonces { key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key) }
    }

    /// A nonce for `client`, valid for [`NONCE_LIFETIME_SECS`] from `now_unix`.
    pub fn issue(&self, client: IpAddr, now_unix: u64) -> String {
        let expiry = now_unix.saturating_add(NONCE_LIFETIME_SECS);
        format!("{expiry:016x}{}", self.mac(client, expiry))
    }

    pub fn check(&self, nonce: &str, client: IpAddr, now_unix: u64) -> Result<(), NonceError> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return Err(NonceError::Invalid);
        }
        let (stamp, mac) = nonce.split_at(16);
        let expiry = u64::from_str_radix(stamp, 16).map_err(|_| NonceError::Invalid)?;
        let expected = self.mac(client, expiry);
        if !rtc_stun::crypto::constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return Err(NonceError::Invalid);
        }
        if expiry <= now_unix { Err(NonceError::Stale) } else { Ok(()) }
    }

    fn mac(&self, client: IpAddr, expiry: u64) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&expiry.to_be_bytes());
        match client {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.sign().as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn a_nonce_holds_for_its_client_until_it_expires() {
        let nonces = Nonces::new(&[7; 32]);
        let n = nonces.issue(A, 1000);
        assert_eq!(n.len(), NONCE_LEN);
        assert_eq!(nonces.check(&n, A, 1000 + NONCE_LIFETIME_SECS - 1), Ok(()));
        assert_eq!(nonces.check(&n, A, 1000 + NONCE_LIFETIME_SECS), Err(NonceError::Stale));
        assert_eq!(nonces.check(&n, B, 1000), Err(NonceError::Invalid));
        assert_eq!(Nonces::new(&[8; 32]).check(&n, A, 1000), Err(NonceError::Invalid));
    }

    #[test]
    fn forged_and_garbled_nonces_are_invalid() {
        let nonces = Nonces::new(&[7; 32]);
        let n = nonces.issue(A, 1000);
        // A later expiry with the old MAC.
        let forged = format!("{:016x}{}", 1_000_000u64, &n[16..]);
        assert_eq!(nonces.check(&forged, A, 1000), Err(NonceError::Invalid));
        for bad in ["", "x", &n[..31], "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "ééééééééééééééé."] {
            assert_eq!(nonces.check(bad, A, 1000), Err(NonceError::Invalid), "{bad:?}");
        }
    }
}
