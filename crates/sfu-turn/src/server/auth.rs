//! Long-term credentials (RFC 8489 section 9.2) with REST passwords: the password of a username
//! is computed from the shared secret, and the username carries its own expiry.

use rtc_stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use rtc_stun::error_code::{CODE_BAD_REQUEST, CODE_STALE_NONCE, CODE_UNAUTHORIZED};
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::Message;
use std::time::Instant;

use super::{ClientAddr, TurnCore};
use crate::credentials::{CredentialError, check_expiry};
use crate::nonce::NonceError;
use crate::wire::{self, ReplyTo, Seal};

/// MESSAGE-INTEGRITY is an HMAC-SHA1: 20 bytes.
const INTEGRITY_LEN: usize = 20;

/// A request whose credentials passed.
pub(super) struct Authed {
    pub username: String,
    /// The long-term key, MD5(username:realm:password): signs the responses.
    pub key: Vec<u8>,
}

/// Why a request is not authenticated, and so how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No MESSAGE-INTEGRITY: 401 with the realm and a nonce, the first step of every client.
    Challenge,
    /// A credential that failed (expired, wrong password, not in the REST form, another
    /// realm): 401, unsigned.
    Unauthorized,
    /// A nonce that expired or is not ours: 438 with a new one.
    StaleNonce,
    /// MESSAGE-INTEGRITY without USERNAME, REALM or NONCE: 400.
    BadRequest,
}

impl TurnCore {
    /// Checks the request's credentials (counting the failures).
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        client: ClientAddr,
        m: &mut Message,
    ) -> Result<Authed, Refusal> {
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            self.stats.challenges += 1;
            return Err(Refusal::Challenge);
        }
        let (Some(username), Some(realm), Some(nonce)) =
            (wire::text(m, ATTR_USERNAME), wire::text(m, ATTR_REALM), wire::text(m, ATTR_NONCE))
        else {
            return Err(Refusal::BadRequest);
        };
        let unix = self.unix_now(now);
        match self.nonces.check(&nonce, client.addr.ip(), unix) {
            Ok(()) => {}
            Err(NonceError::Stale | NonceError::Invalid) => {
                self.stats.stale_nonces += 1;
                return Err(Refusal::StaleNonce);
            }
        }
        if realm != self.config.realm {
            self.stats.auth_rejected += 1;
            return Err(Refusal::Unauthorized);
        }
        match check_expiry(&username, unix) {
            Ok(_) => {}
            Err(CredentialError::Expired { .. }) => {
                self.stats.auth_expired += 1;
                return Err(Refusal::Unauthorized);
            }
            Err(CredentialError::Malformed) => {
                self.stats.auth_rejected += 1;
                return Err(Refusal::Unauthorized);
            }
        }
        let password = self.config.secret.password_for(&username);
        let crypto = self.crypto.crypto();
        let key = MessageIntegrity::long_term_integrity_key(username.clone(), realm, password, crypto);
        let integrity_ok = m.get(ATTR_MESSAGE_INTEGRITY).is_ok_and(|v| v.len() == INTEGRITY_LEN)
            && key.as_ref().is_ok_and(|key| MessageIntegrity::check(m, key, crypto).is_ok());
        match key {
            Ok(key) if integrity_ok => Ok(Authed { username, key }),
            _ => {
                self.stats.auth_rejected += 1;
                Err(Refusal::Unauthorized)
            }
        }
    }

    /// Answers a request that was not authenticated.
    pub(super) fn refuse(&mut self, now: Instant, client: ClientAddr, to: ReplyTo, refusal: Refusal) {
        let seal = Seal { key: None, crypto: self.crypto.crypto() };
        let response = match refusal {
            Refusal::BadRequest => wire::error(to, CODE_BAD_REQUEST, Vec::new(), seal),
            Refusal::Challenge | Refusal::Unauthorized | Refusal::StaleNonce => {
                let code = if refusal == Refusal::StaleNonce { CODE_STALE_NONCE } else { CODE_UNAUTHORIZED };
                let nonce = self.nonces.issue(client.addr.ip(), self.unix_now(now));
                let attrs = vec![wire::text_attr(ATTR_REALM, &self.config.realm), wire::text_attr(ATTR_NONCE, &nonce)];
                wire::error(to, code, attrs, seal)
            }
        };
        self.send_to_client(client, response);
    }
}
