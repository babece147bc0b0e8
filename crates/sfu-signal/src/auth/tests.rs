//! Tests of access and session tokens.

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

/// Signs a payload given as raw JSON text (which may say things a `serde_json::Value` cannot,
/// such as a key twice).
fn raw_text_token(payload: &str, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

/// Access-token claims for `room` expiring at `exp`, as a join would have verified them.
fn joined_with(room: &str, exp: u64) -> Claims {
    Claims {
        sub: "alice".into(),
        room: room.into(),
        grants: Grants::participant(),
        exp,
        iat: NOW,
        name: None,
        topology: None,
        audio_mode: None,
    }
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
    assert_eq!(json, serde_json::json!({ "publish": true, "subscribe": true, "publish_data": true, "admin": false }));
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
    let t = a.issue_session(&joined_with("room1", NOW + 3600), "PA_123", Duration::from_secs(30), NOW);
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
    let session = a.issue_session(&joined_with("r", NOW + 60), "PA_1", Duration::from_secs(60), NOW);

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
    let explicit = raw_token(serde_json::json!({ "kind": "access", "sub": "a", "room": "r", "exp": NOW + 60 }), SECRET);
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

#[test]
fn not_before_in_the_future_refused() {
    let t = raw_token(serde_json::json!({ "sub": "a", "room": "r", "exp": NOW + 600, "nbf": NOW + 10 }), SECRET);
    let err = authority().verify(&t, NOW).unwrap_err();
    assert_eq!(err, AuthError::NotYetValid);
    assert_eq!(err.code(), "token_not_yet_valid");
    assert_eq!(authority().verify(&t, NOW + 9).unwrap_err(), AuthError::NotYetValid);
    assert!(authority().verify(&t, NOW + 10).is_ok());
    // The leeway that absorbs skew at expiry absorbs it here too.
    assert!(authority().with_leeway(10).verify(&t, NOW).is_ok());
    // A `nbf` that is not a time is not ignored.
    let t = raw_token(serde_json::json!({ "sub": "a", "room": "r", "exp": NOW + 600, "nbf": "soon" }), SECRET);
    assert!(matches!(authority().verify(&t, NOW), Err(AuthError::InvalidClaims(_))));
}

#[test]
fn issued_in_the_future_refused_beyond_skew() {
    let at = |iat: u64| raw_token(serde_json::json!({ "sub": "a", "room": "r", "exp": NOW + 600, "iat": iat }), SECRET);
    assert!(authority().verify(&at(NOW + MAX_IAT_SKEW_SECS), NOW).is_ok());
    assert_eq!(authority().verify(&at(NOW + MAX_IAT_SKEW_SECS + 1), NOW).unwrap_err(), AuthError::NotYetValid);
    assert_eq!(authority().verify(&at(NOW + 3600), NOW).unwrap_err(), AuthError::NotYetValid);
    // Session tokens are held to the same rule.
    let a = authority();
    let session = a.issue_session(&joined_with("r", NOW + 7200), "PA_1", Duration::from_secs(3600), NOW + 3600);
    assert_eq!(a.verify_session(&session, NOW).unwrap_err(), AuthError::NotYetValid);
}

#[test]
fn duplicate_keys_refused() {
    let exp = NOW + 600;
    let base = format!(r#""sub":"mallory","room":"r","exp":{exp}"#);
    // The same grant twice: one parser reads false, another true. Refused whatever the order.
    for grants in [r#"{"admin":false,"admin":true}"#, r#"{"admin":true,"admin":false}"#] {
        let t = raw_text_token(&format!(r#"{{{base},"grants":{grants}}}"#), SECRET);
        let err = authority().verify(&t, NOW).unwrap_err();
        assert_eq!(err, AuthError::DuplicateKey("admin".into()));
        assert_eq!(err.code(), "token_duplicate_key");
    }
    // A claim twice at the top level too.
    let t = raw_text_token(&format!(r#"{{{base},"room":"other"}}"#), SECRET);
    assert_eq!(authority().verify(&t, NOW).unwrap_err(), AuthError::DuplicateKey("room".into()));
    // The same payload without the repetition is fine, and a forged one still fails on signature.
    let t = raw_text_token(&format!(r#"{{{base},"grants":{{"admin":false,"subscribe":true}}}}"#), SECRET);
    assert!(authority().verify(&t, NOW).unwrap().grants.subscribe);
    let t = raw_text_token(&format!(r#"{{{base},"room":"other"}}"#), b"not-the-secret");
    assert_eq!(authority().verify(&t, NOW).unwrap_err(), AuthError::BadSignature);
}

#[test]
fn session_token_never_outlives_the_access_token() {
    let a = authority();
    // The access token has 10 minutes left; the session would have had a day.
    let session = a.issue_session(&joined_with("r", NOW + 600), "PA_1", Duration::from_secs(24 * 3600), NOW);
    let claims = a.verify_session(&session, NOW + 599).unwrap();
    assert_eq!(claims.exp, NOW + 600);
    assert_eq!(claims.room, "r");
    assert_eq!(a.verify_session(&session, NOW + 600).unwrap_err(), AuthError::Expired);
    // A shorter session TTL is kept as it is.
    let short = a.issue_session(&joined_with("r", NOW + 7200), "PA_1", Duration::from_secs(30), NOW);
    assert_eq!(a.verify_session(&short, NOW).unwrap().exp, NOW + 30);
}
