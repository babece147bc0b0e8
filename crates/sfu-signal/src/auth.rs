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
//! (a few seconds absorb clock skew between an external token issuer and this server).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// Value of the `kind` claim of a session token.
pub const SESSION_KIND: &str = "session";
/// Value of the (optional) `kind` claim of an access token.
pub const ACCESS_KIND: &str = "access";

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
        // The decoder has already ensured `exp` is present and numeric.
        let exp = match data.claims.get("exp") {
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or(AuthError::MissingExpiry)?,
            None => return Err(AuthError::MissingExpiry),
        };
        if now_unix >= exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
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

    /// Issues a session (resume) token for `participant_id` in `room`, valid for `ttl`.
    pub fn issue_session(&self, room: &str, participant_id: &str, ttl: Duration, now_unix: u64) -> String {
        self.encode(&SessionClaims {
            kind: SESSION_KIND.to_owned(),
            room: room.to_owned(),
            participant_id: participant_id.to_owned(),
            exp: now_unix.saturating_add(ttl.as_secs()),
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
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn authority() -> TokenAuthority {
        TokenAuthority::new("APIkey1", SECRET)
    }

    /// Signs an arbitrary JSON payload with `secret`, for hand-made tokens.
    fn raw_token(payload: serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &payload, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn round_trip() {
        let a = authority();
        let t = a.issue("room1", "alice", Grants::participant(), Duration::from_secs(3600), NOW);
        let c = a.verify(&t, NOW + 10).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.room, "room1");
        assert_eq!(c.grants, Grants::participant());
        assert_eq!(c.exp, NOW + 3600);
        assert_eq!(c.iat, NOW);
        assert_eq!(c.name, None);

        let named = a.sign(&Claims { name: Some("Alice A.".into()), ..c.clone() });
        assert_eq!(a.verify(&named, NOW).unwrap().name.as_deref(), Some("Alice A."));
    }

    #[test]
    fn wrong_secret() {
        let t = authority().issue("r", "a", Grants::all(), Duration::from_secs(60), NOW);
        let other = TokenAuthority::new("APIkey1", b"another-secret-another-secret-xx");
        let err = other.verify(&t, NOW).unwrap_err();
        assert_eq!(err, AuthError::BadSignature);
        assert_eq!(err.code(), "token_bad_signature");
    }

    #[test]
    fn expired() {
        let a = authority();
        let t = a.issue("r", "a", Grants::all(), Duration::from_secs(60), NOW);
        assert!(a.verify(&t, NOW + 59).is_ok());
        let err = a.verify(&t, NOW + 60).unwrap_err();
        assert_eq!(err, AuthError::Expired);
        assert_eq!(err.code(), "token_expired");
        // With leeway the same token is accepted a little longer.
        let lenient = authority().with_leeway(5);
        assert!(lenient.verify(&t, NOW + 64).is_ok());
        assert_eq!(lenient.verify(&t, NOW + 65).unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn missing_exp_rejected() {
        let t = raw_token(serde_json::json!({ "sub": "a", "room": "r", "iat": NOW }), SECRET);
        let err = authority().verify(&t, NOW).unwrap_err();
        assert_eq!(err, AuthError::MissingExpiry);
        assert_eq!(err.code(), "token_missing_expiry");
    }

    #[test]
    fn non_numeric_exp_rejected() {
        let t = raw_token(serde_json::json!({ "sub": "a", "room": "r", "exp": "never" }), SECRET);
        assert_eq!(authority().verify(&t, NOW).unwrap_err(), AuthError::MissingExpiry);
    }

    #[test]
    fn tampered_payload() {
        let a = authority();
        let t = a.issue("r", "mallory", Grants::none(), Duration::from_secs(60), NOW);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        // Replace the payload with one granting admin, keep the original header and signature.
        let forged_claims = serde_json::json!({
            "sub": "mallory", "room": "r", "exp": NOW + 60, "iat": NOW,
            "grants": { "admin": true }
        });
        let donor = raw_token(forged_claims, b"attacker-does-not-know-the-secret");
        let forged_payload = donor.split('.').nth(1).unwrap();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(a.verify(&forged, NOW).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn malformed() {
        let a = authority();
        for t in ["", "abc", "a.b", "a.b.c", "....", "not a jwt at all"] {
            assert_eq!(a.verify(t, NOW).unwrap_err(), AuthError::Malformed, "token {t:?}");
        }
    }

    #[test]
    fn other_algorithm_rejected() {
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({ "sub": "a", "room": "r", "exp": NOW + 60 }),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let err = authority().verify(&t, NOW).unwrap_err();
        assert_eq!(err, AuthError::UnsupportedAlgorithm);
    }

    #[test]
    fn other_key_id_rejected() {
        let t = TokenAuthority::new("otherkey", SECRET).issue("r", "a", Grants::all(), Duration::from_secs(60), NOW);
        assert_eq!(authority().verify(&t, NOW).unwrap_err(), AuthError::UnknownKey);
    }

    #[test]
    fn grants_parse() {
        // Missing grants object: no rights.
        let t = raw_token(serde_json::json!({ "sub": "a", "room": "r", "exp": NOW + 60 }), SECRET);
        let c = authority().verify(&t, NOW).unwrap();
        assert_eq!(c.grants, Grants::none());
        assert_eq!(c.iat, 0);

        // Partial grants object: the rest default to false.
        let t = raw_token(
            serde_json::json!({
                "sub": "a", "room": "r", "exp": NOW + 60,
                "grants": { "subscribe": true, "admin": true }
            }),
            SECRET,
        );
        let g = authority().verify(&t, NOW).unwrap().grants;
        assert_eq!(g, Grants { publish: false, subscribe: true, publish_data: false, admin: true });

        // Grants serialize with snake_case names.
        let json = serde_json::to_value(Grants::participant()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "publish": true, "subscribe": true, "publish_data": true, "admin": false })
        );
        assert_eq!(Grants::default(), Grants::none());
        assert!(Grants::all().admin && !Grants::participant().admin);
    }

    #[test]
    fn missing_required_claims() {
        let t = raw_token(serde_json::json!({ "room": "r", "exp": NOW + 60 }), SECRET);
        let err = authority().verify(&t, NOW).unwrap_err();
        assert!(matches!(err, AuthError::InvalidClaims(_)), "{err:?}");
        assert_eq!(err.code(), "token_invalid_claims");
    }

    #[test]
    fn session_round_trip() {
        let a = authority();
        let t = a.issue_session("room1", "PA_123", Duration::from_secs(30), NOW);
        let s = a.verify_session(&t, NOW + 29).unwrap();
        assert_eq!(s.kind, SESSION_KIND);
        assert_eq!(s.room, "room1");
        assert_eq!(s.participant_id, "PA_123");
        assert_eq!(s.exp, NOW + 30);
        assert_eq!(a.verify_session(&t, NOW + 30).unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn session_and_access_tokens_not_interchangeable() {
        let a = authority();
        let access = a.issue("r", "alice", Grants::all(), Duration::from_secs(60), NOW);
        let session = a.issue_session("r", "PA_1", Duration::from_secs(60), NOW);

        let err = a.verify_session(&access, NOW).unwrap_err();
        assert_eq!(err, AuthError::WrongKind { expected: "session" });
        assert_eq!(err.code(), "token_wrong_kind");
        assert_eq!(a.verify(&session, NOW).unwrap_err(), AuthError::WrongKind { expected: "access" });

        // A hand-made access token that smuggles in extra session-like fields is still an access
        // token only if it says so; any other `kind` is refused by both verifiers.
        let odd = raw_token(
            serde_json::json!({ "kind": "refresh", "sub": "a", "room": "r", "pid": "x", "exp": NOW + 60 }),
            SECRET,
        );
        assert!(matches!(a.verify(&odd, NOW), Err(AuthError::WrongKind { .. })));
        assert!(matches!(a.verify_session(&odd, NOW), Err(AuthError::WrongKind { .. })));

        // An explicit `kind: "access"` is accepted as an access token.
        let explicit =
            raw_token(serde_json::json!({ "kind": "access", "sub": "a", "room": "r", "exp": NOW + 60 }), SECRET);
        assert_eq!(a.verify(&explicit, NOW).unwrap().sub, "a");
    }

    #[test]
    fn debug_redacts_secret() {
        let s = format!("{:?}", authority());
        assert!(s.contains("APIkey1") && !s.contains("0123456789abcdef"));
    }

    #[test]
    fn unix_time_conversion() {
        assert_eq!(unix_time(UNIX_EPOCH + Duration::from_secs(42)), 42);
        assert_eq!(unix_time(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
