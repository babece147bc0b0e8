//! Small encodings shared by the handshake, the keys and the messages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use serde::{Deserialize, Deserializer, Serializer};

/// Appends `field` with its length (u32, big-endian) in front, so that concatenated fields of a
/// MAC or HKDF input can never be read two ways (`"ab" | "c"` against `"a" | "bc"`).
pub(crate) fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("fields here are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// Serde for fixed-size byte arrays (nonces, MACs) as unpadded base64 text.
pub(crate) mod b64_array {
    use super::*;

    pub(crate) fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = B64.decode(text.as_bytes()).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|v: Vec<u8>| serde::de::Error::invalid_length(v.len(), &"a fixed number of bytes"))
    }
}

/// Serde for a byte payload as unpadded base64 text: a third larger than the bytes, where a
/// JSON array of numbers would be three to four times larger.
pub(crate) mod b64_bytes {
    use super::*;
    use bytes::Bytes;

    pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(text.as_bytes()).map(Bytes::from).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_boundary_cannot_move() {
        let (mut one, mut two) = (Vec::new(), Vec::new());
        push_field(&mut one, b"ab");
        push_field(&mut one, b"c");
        push_field(&mut two, b"a");
        push_field(&mut two, b"bc");
        assert_ne!(one, two);
        assert_eq!(one, [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c']);
    }
}
