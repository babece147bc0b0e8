//! Time-limited TURN credentials, the TURN REST scheme (draft-uberti-behave-turn-rest-00) that
//! coturn calls `use-auth-secret`: whoever knows the shared secret can mint a password for any
//! username, and the username carries its own expiry, so the TURN server needs no user database.
//!
//! - username: `<expiry, unix seconds>:<identity>`
//! - password: base64(HMAC-SHA1(secret, username))

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use std::time::Duration;

/// Longest identity kept in a username; longer ones are cut (the USERNAME attribute holds at
/// most 513 bytes, and nothing needs more to tell users apart in a TURN server's log).
pub const MAX_IDENTITY_CHARS: usize = 64;

/// One minted credential, as a client passes it to `RTCPeerConnection`'s `iceServers`.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredential {
    /// `<expiry>:<identity>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
    /// When the credential stops working, unix seconds.
    pub expires_unix: u64,
}

impl std::fmt::Debug for TurnCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

/// Why a username is not a live REST credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username does not start with decimal unix seconds (followed by `:` or nothing).
    #[error("username is not <expiry>:<identity>")]
    Malformed,
    /// The expiry it names has passed.
    #[error("credential expired at {expired_at} (unix seconds)")]
    Expired {
        /// The expiry the username names, unix seconds.
        expired_at: u64,
    },
}

/// The shared secret; mints and checks credentials.
#[derive(Clone)]
pub struct RestSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for RestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestSecret(<redacted>)")
    }
}

impl RestSecret {
    /// A secret as configured (`turn.secret`; coturn's `static-auth-secret`).
    pub fn new(secret: &[u8]) -> Self {
        RestSecret { key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret) }
    }

    /// A credential for `identity` valid for `ttl` from `now_unix`.
    pub fn mint(&self, identity: &str, now_unix: u64, ttl: Duration) -> TurnCredential {
        let expires_unix = now_unix.saturating_add(ttl.as_secs());
        let username = format!("{expires_unix}:{}", username_identity(identity));
        let password = self.password_for(&username);
        TurnCredential { username, password, expires_unix }
    }

    /// The password that goes with `username` (whether or not it has expired).
    pub fn password_for(&self, username: &str) -> String {
        STANDARD.encode(hmac::sign(&self.key, username.as_bytes()).as_ref())
    }
}

/// The expiry `username` names, if it is still in the future at `now_unix`.
pub fn check_expiry(username: &str, now_unix: u64) -> Result<u64, CredentialError> {
    // coturn reads the timestamp up to the first separator; the identity may hold more of them.
    let stamp = username.split(':').next().unwrap_or_default();
    if stamp.is_empty() || stamp.len() > 20 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CredentialError::Malformed);
    }
    let expires = stamp.parse::<u64>().map_err(|_| CredentialError::Malformed)?;
    if expires <= now_unix {
        return Err(CredentialError::Expired { expired_at: expires });
    }
    Ok(expires)
}

/// `identity` as it goes into a username: ASCII letters, digits and `-_.@+` kept, anything else
/// (spaces, quotes, non-ASCII) replaced by `_`, so the username is safe in a `Link` header and
/// needs no SASLprep; at most [`MAX_IDENTITY_CHARS`]; `anonymous` when empty.
pub fn username_identity(identity: &str) -> String {
    let kept: String = identity
        .chars()
        .take(MAX_IDENTITY_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || "-_.@+".contains(c) { c } else { '_' })
        .collect();
    if kept.is_empty() { "anonymous".to_owned() } else { kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_an_independent_hmac_sha1() {
        // Computed outside Rust:
        //   printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac 'turn-rest-test-secret' -binary | base64
        //   python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
        //     b'turn-rest-test-secret', b'1700000000:alice', hashlib.sha1).digest()).decode())"
        // both print 0enZjbc7bOMDfqc+XjQnzmKx+Zs=
        let secret = RestSecret::new(b"turn-rest-test-secret");
        assert_eq!(secret.password_for("1700000000:alice"), "0enZjbc7bOMDfqc+XjQnzmKx+Zs=");
        let minted = secret.mint("alice", 1_699_913_600, Duration::from_secs(86_400));
        assert_eq!(minted.username, "1700000000:alice");
        assert_eq!(minted.password, "0enZjbc7bOMDfqc+XjQnzmKx+Zs=");
        assert_eq!(minted.expires_unix, 1_700_000_000);
    }

    #[test]
    fn another_secret_gives_another_password() {
        let a = RestSecret::new(b"one secret").password_for("1700000000:alice");
        let b = RestSecret::new(b"another secret").password_for("1700000000:alice");
        assert_ne!(a, b);
    }

    #[test]
    fn expiry_is_read_from_the_username() {
        assert_eq!(check_expiry("1700000000:alice", 1_699_999_999), Ok(1_700_000_000));
        assert_eq!(check_expiry("1700000000", 1_600_000_000), Ok(1_700_000_000));
        // An identity with colons of its own: the first one ends the timestamp.
        assert_eq!(check_expiry("1700000000:a:b", 1_600_000_000), Ok(1_700_000_000));
        assert_eq!(
            check_expiry("1700000000:alice", 1_700_000_000),
            Err(CredentialError::Expired { expired_at: 1_700_000_000 })
        );
        assert_eq!(
            check_expiry("1700000000:alice", 1_800_000_000),
            Err(CredentialError::Expired { expired_at: 1_700_000_000 })
        );
        for bad in ["alice", ":alice", "", "17e8:alice", "-5:alice", "99999999999999999999999:x", " 1700000000:a"] {
            assert_eq!(check_expiry(bad, 0), Err(CredentialError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn identities_are_made_safe_for_headers_and_cut() {
        assert_eq!(username_identity("alice@example.org"), "alice@example.org");
        assert_eq!(username_identity("a \"b\"\\c\r\n"), "a__b__c__");
        assert_eq!(username_identity("zoë"), "zo_");
        assert_eq!(username_identity(""), "anonymous");
        assert_eq!(username_identity(&"x".repeat(500)).len(), MAX_IDENTITY_CHARS);
    }
}
