//! Access tokens minted locally with the server's key configuration (docs/protocol.md, Tokens):
//! HS256, header `kid` = API key, claims `{sub, room, grants, exp, iat}`.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize, Clone, Copy, Debug, Default)]
pub struct Grants {
    pub publish: bool,
    pub subscribe: bool,
    pub publish_data: bool,
    pub admin: bool,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    room: &'a str,
    grants: Grants,
    exp: u64,
    iat: u64,
}

pub struct Minter {
    key_id: String,
    key: EncodingKey,
}

/// How long minted tokens stay valid.
const TOKEN_TTL_SECS: u64 = 6 * 3600;

impl Minter {
    pub fn new(api_key: &str, api_secret: &str) -> Self {
        Self { key_id: api_key.to_owned(), key: EncodingKey::from_secret(api_secret.as_bytes()) }
    }

    pub fn mint(&self, room: &str, identity: &str, grants: Grants) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims { sub: identity, room, grants, exp: now + TOKEN_TTL_SECS, iat: now };
        Ok(encode(&header, &claims, &self.key)?)
    }
}
