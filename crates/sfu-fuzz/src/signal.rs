//! What a client sends to signaling: WebSocket messages, access and session tokens, and WHIP
//! trickle fragments, each of any text.

use sfu_proto::ClientMessage;
use sfu_signal::auth::{Claims, TokenAuthority};

const NOW: u64 = 1_800_000_000;

/// The first byte says what the rest is.
pub fn signal_message(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match kind % 4 {
        0 => message(&text),
        1 => token(&text),
        2 => signed_claims(&text),
        _ => trickle(&text),
    }
}

/// A message that decodes encodes again to the same message.
fn message(text: &str) {
    let Ok(decoded) = serde_json::from_str::<ClientMessage>(text) else { return };
    let encoded = serde_json::to_string(&decoded).expect("a decoded message encodes");
    let again: ClientMessage = serde_json::from_str(&encoded).expect("an encoded message decodes");
    assert_eq!(decoded, again);
}

fn authority() -> TokenAuthority {
    TokenAuthority::new("fuzzkey", b"a secret of thirty-two bytes or more!")
}

/// Any text as an access or a session token: refused with a reason, or accepted.
fn token(text: &str) {
    let authority = authority();
    let _ = authority.verify(text, NOW);
    let _ = authority.verify_session(text, NOW);
}

/// Claims of any content, signed with the right key: whatever verification says, a token it
/// accepts is the one that was signed.
fn signed_claims(text: &str) {
    let Ok(claims) = serde_json::from_str::<Claims>(text) else { return };
    let authority = authority();
    let token = authority.sign(&claims);
    if let Ok(verified) = authority.verify(&token, claims.iat) {
        assert_eq!((verified.sub, verified.room), (claims.sub, claims.room));
    }
}

/// A WHIP PATCH body: every candidate line is found, with the section it follows.
fn trickle(text: &str) {
    let candidates = sfu_signal::fragment_candidates(text);
    let lines = text.lines().filter(|l| l.trim_end().starts_with("a=candidate:")).count();
    assert_eq!(candidates.len(), lines);
    let sections = text.lines().filter(|l| l.starts_with("m=")).count();
    for candidate in &candidates {
        let index = usize::from(candidate.sdp_m_line_index.unwrap_or(0));
        assert!(index <= sections.max(1), "section {index} of {sections}");
    }
}
