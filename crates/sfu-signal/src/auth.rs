//! Access tokens (JWT HS256) and short-lived session tokens.
//!
//! Two token kinds are signed with the same API secret:
//!
//! * **Access tokens** ([`Claims`]) are minted by the operator's backend (or `sfu token`) and presented
//!   on join. They name the room, the participant identity and what the participant may do
//!   ([`Grants`]). An access token never carries a `kind` claim (or carries `kind: "access"`).
//! * **Session tokens** ([`SessionClaims`]) are minted by the server itself when a participant has
//!   joined and are presented to resume that participant's session after a dropped socket. They
//!   always carry `kind: "session"`.
//!
//! Each verifier insists on its own kind, so an access token is never accepted where a session token
//! is expected and vice versa.
//!
//! # Time
//!
//! Nothing in this module reads the clock: `issue*` and `verify*` take the current time as seconds
//! since the Unix epoch (see [`unix_time`]), which keeps every check deterministic in tests.
//! jsonwebtoken's own expiry check (which reads the system clock) is switched off; instead `exp` is
//! *required* by the decoder and compared against the caller's `now` here. A token is valid while
//! `now < exp + leeway`; the leeway is 0 seconds unless set with [`TokenAuthority::with_leeway`]
//! (a few seconds absorb clock skew between an external token issuer and this server). A token
//! is not valid yet while `now + leeway < nbf`, or while its `iat` lies more than
//! [`MAX_IAT_SKEW_SECS`] (plus leeway) ahead of `now`.
//!
//! # Claims are read strictly
//!
//! A payload that names a key twice at any depth (say `"admin"` twice in `grants`) is refused:
//! JSON parsers disagree on which of the two wins, so an issuer and this server could read
//! different rights out of the same signed token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

mod duplicate_keys;

/// Value of the `kind` claim of a session token.
pub const SESSION_KIND: &str = "session";
/// Value of the (optional) `kind` claim of an access token.
pub const ACCESS_KIND: &str = "access";
/// How far (seconds) a token's `iat` may lie ahead of this server's clock before the token is
/// refused as not valid yet: issuers' clocks drift a little, a token from the future is suspect.
pub const MAX_IAT_SKEW_SECS: u64 = 60;

/// What a participant holding an access token may do. Every grant defaults to `false`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(default)]
pub struct Grants {
    /// May publish media tracks.
    pub publish: bool,
    /// May subscribe to other participants' tracks.
    pub subscribe: bool,
    /// May send data messages to the room.
    pub publish_data: bool,
    /// May use the admin API for this room (kick, mute others, list participants).
    pub admin: bool,
}

impl Grants {
    /// No rights at all.
    pub const fn none() -> Self {
        Grants { publish: false, subscribe: false, publish_data: false, admin: false }
    }

    /// An ordinary conference participant: publish, subscribe and publish data; no admin.
    pub const fn participant() -> Self {
        Grants { publish: true, subscribe: true, publish_data: true, admin: false }
    }

    /// Every grant, including admin.
    pub const fn all() -> Self {
        Grants { publish: true, subscribe: true, publish_data: true, admin: true }
    }
}

/// The claims of an access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// Participant identity (unique within the room, chosen by the issuer).
    pub sub: String,
    /// Room the token admits to.
    pub room: String,
    /// What the participant may do; missing means no rights.
    #[serde(default)]
    pub grants: Grants,
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch (informational; 0 when absent).
    #[serde(default)]
    pub iat: u64,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Optional topology for the room (`auto`, `sfu`, `mesh`): the claim of the token that
    /// creates the room wins over `rooms.topology`; later joiners' claims are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<sfu_proto::TopologySetting>,
    /// Optional audio mode for the room (`forward`, `mix`): as `topology`, the room creator's
    /// claim wins over `audio.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_mode: Option<crate::config::AudioMode>,
}

/// The claims of a session (resume) token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SessionClaims {
    /// Always [`SESSION_KIND`].
    pub kind: String,
    /// Room of the session.
    pub room: String,
    /// Server-assigned participant id of the session.
    #[serde(rename = "pid")]
    pub participant_id: String,
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    #[serde(default)]
    pub iat: u64,
}

/// Why a token was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The string is not a JWT at all: wrong number of segments, bad base64, header or payload
    /// not JSON, or an unknown `alg` name.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the payload under the configured secret (forged or tampered
    /// token, or a token signed with another secret).
    #[error("token signature is invalid")]
    BadSignature,
    /// The token's header names an algorithm other than HS256.
    #[error("token algorithm is not HS256")]
    UnsupportedAlgorithm,
    /// The header's `kid` names an API key other than the one this server is configured with.
    #[error("token was issued for another API key")]
    UnknownKey,
    /// The `exp` claim is absent (or not a number). Tokens without expiry are never accepted.
    #[error("token has no expiry (exp claim)")]
    MissingExpiry,
    /// The token's `exp` lies at or before the verification time (plus leeway).
    #[error("token has expired")]
    Expired,
    /// The token's `nbf` lies after the verification time (plus leeway), or its `iat` more than
    /// [`MAX_IAT_SKEW_SECS`] after it.
    #[error("token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    /// The payload names the same key twice in one object (e.g. a grant given twice).
    #[error("token claims name key `{0}` twice")]
    DuplicateKey(String),
    /// A session token was presented where an access token is expected, or the other way round.
    #[error("wrong kind of token (expected {expected} token)")]
    WrongKind {
        /// The kind the verifier wanted: `"access"` or `"session"`.
        expected: &'static str,
    },
    /// The signature is valid but the claims do not have the expected shape (a required claim
    /// such as `sub` or `room` is missing or has the wrong type).
    #[error("invalid token claims: {0}")]
    InvalidClaims(String),
}

impl AuthError {
    /// Stable machine-readable code, suitable for protocol error messages and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed => "token_malformed",
            AuthError::BadSignature => "token_bad_signature",
            AuthError::UnsupportedAlgorithm => "token_bad_algorithm",
            AuthError::UnknownKey => "token_unknown_key",
            AuthError::MissingExpiry => "token_missing_expiry",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::DuplicateKey(_) => "token_duplicate_key",
            AuthError::WrongKind { .. } => "token_wrong_kind",
            AuthError::InvalidClaims(_) => "token_invalid_claims",
        }
    }
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AuthError::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(c) if c == "exp" => AuthError::MissingExpiry,
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
            AuthError::InvalidClaims(format!("claim `{c}`"))
        }
        ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Malformed,
    }
}

/// A time claim (seconds since the Unix epoch): `None` when absent, an error when not a
/// non-negative number (`exp` reports [`AuthError::MissingExpiry`] as before).
fn time_claim(claims: &serde_json::Value, name: &str) -> Result<Option<u64>, AuthError> {
    let Some(v) = claims.get(name) else { return Ok(None) };
    match v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)) {
        Some(t) => Ok(Some(t)),
        None if name == "exp" => Err(AuthError::MissingExpiry),
        None => Err(AuthError::InvalidClaims(format!("claim `{name}` is not a time"))),
    }
}

/// Seconds since the Unix epoch of `t` (0 for times before the epoch). Callers use it to turn
/// `SystemTime::now()` into the `now_unix` argument of this module's functions.
pub fn unix_time(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Issues and verifies tokens under one API key and secret.
#[derive(Clone)]
pub struct TokenAuthority {
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    leeway_secs: u64,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

impl TokenAuthority {
    /// An authority for API key `key_id` (written to the JWT header as `kid`) and HMAC `secret`.
    pub fn new(key_id: impl Into<String>, secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked by us against the caller's clock; the library only insists it exists.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        TokenAuthority {
            key_id: key_id.into(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            leeway_secs: 0,
        }
    }

    /// The authority for the configured API key and secret.
    pub fn from_config(auth: &AuthConfig) -> Self {
        Self::new(auth.api_key.clone(), auth.api_secret.as_bytes())
    }

    /// Accept tokens up to `secs` seconds after their `exp` (clock-skew allowance). Default 0.
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// The API key this authority signs for.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        header
    }

    fn encode<T: Serialize>(&self, claims: &T) -> String {
        // HS256 signing of a plain struct cannot fail: HMAC takes keys of any length and the
        // claims serialize to JSON infallibly.
        jsonwebtoken::encode(&self.header(), claims, &self.encoding).expect("HS256 token encoding is infallible")
    }

    /// Issues an access token for `identity` in `room`, valid for `ttl` from `now_unix`.
    pub fn issue(&self, room: &str, identity: &str, grants: Grants, ttl: Duration, now_unix: u64) -> String {
        self.sign(&Claims {
            sub: identity.to_owned(),
            room: room.to_owned(),
            grants,
            exp: now_unix.saturating_add(ttl.as_secs()),
            iat: now_unix,
            name: None,
            topology: None,
            audio_mode: None,
        })
    }

    /// Signs arbitrary access-token claims (e.g. with a display name).
    pub fn sign(&self, claims: &Claims) -> String {
        self.encode(claims)
    }

    /// Decodes and checks signature, algorithm, key id and expiry; returns the raw JSON claims.
    fn decode_checked(&self, token: &str, now_unix: u64) -> Result<serde_json::Value, AuthError> {
        let data = jsonwebtoken::decode::<serde_json::Value>(token.trim(), &self.decoding, &self.validation)
            .map_err(map_jwt_error)?;
        if let Some(kid) = &data.header.kid
            && *kid != self.key_id
        {
            return Err(AuthError::UnknownKey);
        }
        // The signature holds, so the payload segment is well-formed base64 JSON: read it again,
        // this time refusing a key named twice (the decoder above kept the last one silently).
        let payload = token.trim().split('.').nth(1).unwrap_or_default();
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
        if let Some(key) = duplicate_keys::first_duplicate(&json) {
            return Err(AuthError::DuplicateKey(key));
        }
        // The decoder has already ensured `exp` is present and numeric.
        let exp = time_claim(&data.claims, "exp")?.ok_or(AuthError::MissingExpiry)?;
        if now_unix >= exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        let not_before = time_claim(&data.claims, "nbf")?.unwrap_or(0);
        let issued = time_claim(&data.claims, "iat")?.unwrap_or(0);
        let now_lenient = now_unix.saturating_add(self.leeway_secs);
        if not_before > now_lenient || issued > now_lenient.saturating_add(MAX_IAT_SKEW_SECS) {
            return Err(AuthError::NotYetValid);
        }
        Ok(data.claims)
    }

    /// Verifies an access token at time `now_unix` and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, AuthError> {
        let raw = self.decode_checked(token, now_unix)?;
        match raw.get("kind") {
            None => {}
            Some(serde_json::Value::String(k)) if k == ACCESS_KIND => {}
            Some(_) => {
                return Err(AuthError::WrongKind { expected: ACCESS_KIND });
            }
        }
        serde_json::from_value(raw).map_err(|e| AuthError::InvalidClaims(e.to_string()))
    }

    /// Issues a session (resume) token for `participant_id`, who joined with the access token
    /// `access`: for the same room, valid for `ttl` but never beyond the access token's `exp`
    /// (resuming must not outlast the right to join).
    pub fn issue_session(&self, access: &Claims, participant_id: &str, ttl: Duration, now_unix: u64) -> String {
        self.encode(&SessionClaims {
            kind: SESSION_KIND.to_owned(),
            room: access.room.clone(),
            participant_id: participant_id.to_owned(),
            exp: now_unix.saturating_add(ttl.as_secs()).min(access.exp),
            iat: now_unix,
        })
    }

    /// Verifies a session token at time `now_unix` and returns its claims.
    pub fn verify_session(&self, token: &str, now_unix: u64) -> Result<SessionClaims, AuthError> {
        let raw = self.decode_checked(token, now_unix)?;
        match raw.get("kind") {
            Some(serde_json::Value::String(k)) if k == SESSION_KIND => {}
            _ => {
                return Err(AuthError::WrongKind { expected: SESSION_KIND });
            }
        }
        serde_json::from_value(raw).map_err(|e| AuthError::InvalidClaims(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
