//! The JSON envelope a data message reaches the room's participants in (docs/protocol.md, "Data
//! messages"), the same whether its sender is on this node or another.

use base64::Engine;
use bytes::Bytes;
#[cfg(test)]
use sfu_transport::DATA_MAX_MESSAGE_BYTES;
use sfu_transport::DATA_SEND_MAX_BYTES;

/// The JSON envelope naming the sender (docs/protocol.md, "Data messages"), or None when it
/// would be larger than a data channel carries: a text message whose escaping grows it past
/// [`DATA_SEND_MAX_BYTES`], or a sender whose identity is very long.
pub fn envelope(identity: &str, participant_id: &str, text: bool, payload: &[u8]) -> Option<Bytes> {
    let mut envelope = serde_json::json!({ "from": identity, "participant_id": participant_id });
    if text {
        envelope["data"] = String::from_utf8_lossy(payload).into_owned().into();
    } else {
        envelope["data_b64"] = base64::engine::general_purpose::STANDARD.encode(payload).into();
    }
    let bytes = envelope.to_string();
    (bytes.len() <= DATA_SEND_MAX_BYTES).then(|| Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_binary_message_fits_its_envelope_even_from_a_long_identity() {
        let payload = vec![0xffu8; DATA_MAX_MESSAGE_BYTES];
        let identity = "x".repeat(4096);
        let e = envelope(&identity, "PA_q8Wm2TzK1bXa", false, &payload).expect("fits");
        assert!(e.len() <= DATA_SEND_MAX_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        let back = base64::engine::general_purpose::STANDARD.decode(v["data_b64"].as_str().unwrap()).unwrap();
        assert_eq!(back, payload);
    }

    #[test]
    fn text_is_refused_only_when_its_escaped_envelope_is_too_large() {
        let plain = "a".repeat(DATA_MAX_MESSAGE_BYTES);
        assert!(envelope("alice", "PA_1", true, plain.as_bytes()).is_some());
        // Control characters escape to six bytes each (\u0001).
        let escaped = "\u{1}".repeat(DATA_MAX_MESSAGE_BYTES);
        assert!(envelope("alice", "PA_1", true, escaped.as_bytes()).is_none());
        let quotes = "\"".repeat(DATA_MAX_MESSAGE_BYTES / 2);
        assert!(envelope("alice", "PA_1", true, quotes.as_bytes()).is_some());
    }
}
