//! Finds a key named twice in one JSON object, at any depth.
//!
//! `serde_json` (like most parsers) keeps the last of two equal keys without a word; a token
//! verifier must not, since another parser may keep the first.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key found twice in one object of the JSON document `json`, or `None` (also when
/// `json` is not JSON at all: the decoder that already read it reports that).
pub(super) fn first_duplicate(json: &[u8]) -> Option<String> {
    let err = serde_json::from_slice::<Checked>(json).err()?;
    // serde_json appends " at line L column C" to the message the visitor gave.
    let message = err.to_string();
    let rest = message.strip_prefix(DUPLICATE)?;
    Some(rest.rsplit_once("` at line ").map_or(rest, |(key, _)| key).to_owned())
}

const DUPLICATE: &str = "duplicate key `";

/// A JSON value, read only to check its objects' keys.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}`")));
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::first_duplicate;

    #[test]
    fn finds_keys_named_twice_at_any_depth() {
        assert_eq!(first_duplicate(br#"{"a":1,"b":{"c":true,"d":[1,{"e":null}]}}"#), None);
        assert_eq!(first_duplicate(br#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(first_duplicate(br#"{"grants":{"admin":false,"admin":true}}"#).as_deref(), Some("admin"));
        assert_eq!(first_duplicate(br#"[{"x":1},{"y":[{"z":1,"z":1}]}]"#).as_deref(), Some("z"));
        // Equal keys in different objects are fine.
        assert_eq!(first_duplicate(br#"{"a":{"k":1},"b":{"k":1}}"#), None);
        assert_eq!(first_duplicate(br#"{"a`b":1,"a`b":2}"#).as_deref(), Some("a`b"));
        assert_eq!(first_duplicate(b"not json"), None);
    }
}
