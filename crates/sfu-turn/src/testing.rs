//! A hand-made TURN client's messages, for tests (feature `testing`): requests with or without
//! long-term credentials, Send indications, ChannelData, and responses read back.

use rtc_stun::attributes::{ATTR_DATA, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use rtc_stun::crypto::default_provider;
use rtc_stun::error_code::ErrorCodeAttribute;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_INDICATION, CLASS_REQUEST, Getter, METHOD_SEND, Message, MessageClass, MessageType, Method, Setter,
    TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_turn::proto::PROTO_UDP;
use rtc_turn::proto::channum::ChannelNumber;
use rtc_turn::proto::data::Data;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::peeraddr::PeerAddress;
use rtc_turn::proto::relayaddr::RelayedAddress;
use rtc_turn::proto::reqtrans::RequestedTransport;
use std::net::SocketAddr;
use std::time::Duration;

pub use rtc_stun::message::{
    METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};

/// Long-term credentials with the realm and nonce a challenge gave.
#[derive(Clone, Debug)]
pub struct Creds {
    /// The REST username.
    pub username: String,
    /// Its password.
    pub password: String,
    /// From the 401.
    pub realm: String,
    /// From the 401 (or 438).
    pub nonce: String,
}

/// What a request carries besides its credentials.
#[derive(Default)]
pub struct Attrs {
    /// REQUESTED-TRANSPORT (Allocate); UDP when `None` and the method is Allocate.
    pub transport: Option<u8>,
    /// LIFETIME.
    pub lifetime: Option<Duration>,
    /// XOR-PEER-ADDRESS, each.
    pub peers: Vec<SocketAddr>,
    /// CHANNEL-NUMBER.
    pub channel: Option<u16>,
}

/// A request of `method` with transaction `tid`, signed when `creds` are given.
pub fn request(method: Method, tid: [u8; 12], attrs: &Attrs, creds: Option<&Creds>) -> Vec<u8> {
    let crypto = default_provider().expect("ring provider");
    let mut setters: Vec<Box<dyn Setter + '_>> =
        vec![Box::new(MessageType::new(method, CLASS_REQUEST)), Box::new(TransactionId(tid))];
    let transport = attrs.transport.or((method == METHOD_ALLOCATE).then_some(PROTO_UDP.0));
    if let Some(protocol) = transport {
        setters.push(Box::new(RequestedTransport { protocol: rtc_turn::proto::Protocol(protocol) }));
    }
    if let Some(l) = attrs.lifetime {
        setters.push(Box::new(Lifetime(l)));
    }
    for p in &attrs.peers {
        setters.push(Box::new(PeerAddress { ip: p.ip(), port: p.port() }));
    }
    if let Some(c) = attrs.channel {
        setters.push(Box::new(ChannelNumber(c)));
    }
    let integrity = creds.map(|c| {
        setters.push(Box::new(TextAttribute::new(ATTR_USERNAME, c.username.clone())));
        setters.push(Box::new(TextAttribute::new(ATTR_REALM, c.realm.clone())));
        setters.push(Box::new(TextAttribute::new(ATTR_NONCE, c.nonce.clone())));
        MessageIntegrity::long_term_integrity_key(
            c.username.clone(),
            c.realm.clone(),
            c.password.clone(),
            crypto.crypto(),
        )
        .expect("md5")
    });
    if let Some(key) = integrity {
        setters.push(Box::new(MessageIntegrity::new_raw_integrity_with_provider(key, crypto.crypto())));
    }
    let mut m = Message::new();
    m.build(&setters).expect("a request builds");
    m.raw
}

/// A Send indication of `data` to `peer`.
pub fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut m = Message::new();
    m.build(&[
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        Box::new(TransactionId::new()),
        Box::new(PeerAddress { ip: peer.ip(), port: peer.port() }),
        Box::new(Data(data.to_vec())),
    ])
    .expect("an indication builds");
    m.raw
}

/// A ChannelData message (unpadded).
pub fn channel_data(number: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = number.to_be_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A response (or Data indication) as the test reads it.
#[derive(Debug, Default)]
pub struct Reply {
    /// Its class.
    pub class: MessageClass,
    /// Its method.
    pub method: Method,
    /// Its transaction.
    pub tid: [u8; 12],
    /// ERROR-CODE, if an error.
    pub error: Option<u16>,
    /// REALM.
    pub realm: Option<String>,
    /// NONCE.
    pub nonce: Option<String>,
    /// XOR-RELAYED-ADDRESS.
    pub relayed: Option<SocketAddr>,
    /// LIFETIME.
    pub lifetime: Option<Duration>,
    /// XOR-PEER-ADDRESS (Data indication).
    pub peer: Option<SocketAddr>,
    /// DATA (Data indication).
    pub data: Option<Vec<u8>>,
    /// Whether it carries MESSAGE-INTEGRITY that checks with `key`.
    pub signed_with: Option<bool>,
}

/// Reads a STUN message the server sent; `key` (a long-term key) checks its integrity.
pub fn read(bytes: &[u8], creds: Option<&Creds>) -> Option<Reply> {
    let mut m = Message::new();
    m.unmarshal_binary(bytes).ok()?;
    let mut r = Reply { class: m.typ.class, method: m.typ.method, tid: m.transaction_id.0, ..Reply::default() };
    let mut code = ErrorCodeAttribute::default();
    if code.get_from(&m).is_ok() {
        r.error = Some(code.code.0);
    }
    r.realm = m.get(ATTR_REALM).ok().and_then(|v| String::from_utf8(v).ok());
    r.nonce = m.get(ATTR_NONCE).ok().and_then(|v| String::from_utf8(v).ok());
    let mut relayed = RelayedAddress::default();
    if relayed.get_from(&m).is_ok() {
        r.relayed = Some(SocketAddr::new(relayed.ip, relayed.port));
    }
    let mut lifetime = Lifetime::default();
    if lifetime.get_from(&m).is_ok() {
        r.lifetime = Some(lifetime.0);
    }
    let mut peer = PeerAddress::default();
    if peer.get_from(&m).is_ok() {
        r.peer = Some(SocketAddr::new(peer.ip, peer.port));
    }
    r.data = m.get(ATTR_DATA).ok();
    if let Some(c) = creds {
        let crypto = default_provider().expect("ring provider");
        let key = MessageIntegrity::long_term_integrity_key(
            c.username.clone(),
            c.realm.clone(),
            c.password.clone(),
            crypto.crypto(),
        )
        .expect("md5");
        r.signed_with = Some(MessageIntegrity::check(&mut m, &key, crypto.crypto()).is_ok());
    }
    Some(r)
}
