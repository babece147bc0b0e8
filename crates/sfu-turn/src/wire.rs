//! STUN messages in and out, on `rtc-stun`: parsing a request, reading the attributes the server
//! needs, and building responses and indications (signed with the request's long-term key when
//! it had one).

use rtc_stun::attributes::{ATTR_FINGERPRINT, ATTR_XOR_PEER_ADDRESS, AttrType};
use rtc_stun::crypto::RTCCrypto;
use rtc_stun::error_code::{ErrorCode, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, Message, MessageType, Method, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAGIC_COOKIE: u32 = 0x2112_A442;

/// A request, indication or response decoded; `None` when it does not parse.
pub fn parse(bytes: &[u8]) -> Option<Message> {
    let mut m = Message::new();
    m.unmarshal_binary(bytes).ok()?;
    Some(m)
}

/// A text attribute (USERNAME, REALM, NONCE) as UTF-8, if present and valid.
pub fn text(m: &Message, attr: AttrType) -> Option<String> {
    let raw = m.get(attr).ok()?;
    String::from_utf8(raw).ok()
}

/// Every XOR-PEER-ADDRESS of `m` (CreatePermission may carry several); `None` if one does not
/// decode.
pub fn peer_addresses(m: &Message) -> Option<Vec<SocketAddr>> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .map(|a| xor_address(&a.value, &m.transaction_id.0))
        .collect()
}

/// The first XOR-PEER-ADDRESS, if there is exactly a valid one or more.
pub fn peer_address(m: &Message) -> Option<SocketAddr> {
    peer_addresses(m)?.into_iter().next()
}

/// Decodes an XOR-*-ADDRESS value (RFC 8489 section 14.2).
fn xor_address(value: &[u8], transaction_id: &[u8; 12]) -> Option<SocketAddr> {
    if value.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(transaction_id);
    let ip = match (value[1], value.len()) {
        (0x01, 8) => {
            let mut o = [0u8; 4];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(o))
        }
        (0x02, 20) => {
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// What a response answers: the request's method and transaction, and whether the client put
/// a FINGERPRINT on it (its responses then get one too).
#[derive(Clone, Copy, Debug)]
pub struct ReplyTo {
    pub method: Method,
    pub transaction_id: TransactionId,
    pub fingerprint: bool,
}

impl ReplyTo {
    pub fn new(request: &Message) -> Self {
        ReplyTo {
            method: request.typ.method,
            transaction_id: request.transaction_id,
            fingerprint: request.contains(ATTR_FINGERPRINT),
        }
    }
}

/// The key a response is signed with (the request's long-term key), if any.
#[derive(Clone, Copy)]
pub struct Seal<'a> {
    pub key: Option<&'a [u8]>,
    pub crypto: &'a dyn RTCCrypto,
}

/// A success response carrying `attrs`.
pub fn success<'a>(to: ReplyTo, attrs: Vec<Box<dyn Setter + 'a>>, seal: Seal<'a>) -> Option<Vec<u8>> {
    build(MessageType::new(to.method, CLASS_SUCCESS_RESPONSE), to, attrs, seal)
}

/// An error response: `code` plus `attrs` (REALM and NONCE for 401 and 438).
pub fn error<'a>(to: ReplyTo, code: ErrorCode, attrs: Vec<Box<dyn Setter + 'a>>, seal: Seal<'a>) -> Option<Vec<u8>> {
    let mut all: Vec<Box<dyn Setter + 'a>> = vec![Box::new(ErrorCodeAttribute { code, reason: reason(code).into() })];
    all.extend(attrs);
    build(MessageType::new(to.method, CLASS_ERROR_RESPONSE), to, all, seal)
}

/// An indication (no transaction to answer: a fresh id), unsigned.
pub fn indication(typ: MessageType, attrs: Vec<Box<dyn Setter>>) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![Box::new(typ), Box::new(TransactionId::new())];
    setters.extend(attrs);
    let mut m = Message::new();
    m.build(&setters).ok()?;
    Some(m.raw)
}

/// A text attribute to add.
pub fn text_attr(attr: AttrType, value: &str) -> Box<dyn Setter> {
    Box::new(TextAttribute::new(attr, value.to_owned()))
}

fn build<'a>(typ: MessageType, to: ReplyTo, attrs: Vec<Box<dyn Setter + 'a>>, seal: Seal<'a>) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter + 'a>> = vec![Box::new(typ), Box::new(to.transaction_id)];
    setters.extend(attrs);
    if let Some(key) = seal.key {
        setters.push(Box::new(MessageIntegrity::new_raw_integrity_with_provider(key.to_vec(), seal.crypto)));
    }
    if to.fingerprint {
        setters.push(Box::new(FINGERPRINT));
    }
    let mut m = Message::new();
    m.build(&setters).ok()?;
    Some(m.raw)
}

/// The reason phrase of each error code the server sends.
fn reason(code: ErrorCode) -> &'static str {
    match code.0 {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::xoraddr::XorMappedAddress;

    #[test]
    fn xor_peer_addresses_decode_as_rtc_stun_encodes_them() {
        for addr in ["127.0.0.1:7882", "[2001:db8::1]:40000", "203.0.113.9:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut m = Message::new();
            m.build(&[Box::new(rtc_stun::message::BINDING_REQUEST), Box::new(TransactionId([5; 12]))]).unwrap();
            XorMappedAddress { ip: addr.ip(), port: addr.port() }.add_to_as(&mut m, ATTR_XOR_PEER_ADDRESS).unwrap();
            XorMappedAddress { ip: addr.ip(), port: 9 }.add_to_as(&mut m, ATTR_XOR_PEER_ADDRESS).unwrap();
            let decoded = parse(&m.raw).unwrap();
            assert_eq!(peer_addresses(&decoded), Some(vec![addr, SocketAddr::new(addr.ip(), 9)]));
        }
    }

    #[test]
    fn short_or_odd_address_values_do_not_decode() {
        assert_eq!(xor_address(&[0, 1, 0], &[0; 12]), None);
        assert_eq!(xor_address(&[0, 1, 0, 0, 1, 2, 3], &[0; 12]), None);
        assert_eq!(xor_address(&[0, 3, 0, 0, 1, 2, 3, 4], &[0; 12]), None);
        assert_eq!(xor_address(&[0, 2, 0, 0, 1, 2, 3, 4], &[0; 12]), None);
    }
}
