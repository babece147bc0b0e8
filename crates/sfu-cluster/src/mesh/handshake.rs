//! The handshake of a control connection (docs/cluster.md, "Control connection and
//! authentication"), sans-IO: messages (or frame bodies) in, messages out, no clock, and the
//! nonces passed in by the caller.
//!
//! 1. Dialer A sends `Hello { node, boot, nonce_a, shards, version }`.
//! 2. Responder B answers `Hello { node, boot, nonce_b, shards, version, mac_b }`.
//! 3. A checks `mac_b` and answers `Confirm { mac_a }`; B checks it.
//!
//! Both MACs are HMAC-SHA256 under the cluster secret over the whole exchange (both nonces,
//! ids, boots, versions and shard lists, each length-prefixed), with a different label per
//! side so that B's MAC replayed as A's fails. A failing side queues a `Refuse` telling the peer
//! why (unauthenticated, for its logs and counters only) and stops.

use std::collections::VecDeque;
use std::net::SocketAddr;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::keys::{ClusterSecret, LinkKeys, LinkParties, NONCE_LEN, Side};
use super::wire::{b64_array, push_field};
use crate::{BootId, NodeId};

/// Version of the mesh protocol spoken by this build; both sides must speak the same.
pub const MESH_VERSION: u32 = 1;
/// Longest node or boot id a `Hello` may carry.
pub const MAX_ID_LEN: usize = 128;
/// Most shards a `Hello` may list.
pub const MAX_SHARDS: usize = 1024;

const RESPONDER_LABEL: &[u8] = b"sfu relay responder";
const DIALER_LABEL: &[u8] = b"sfu relay dialer";

/// Where a peer's shard takes relay media, and the SSRC of that shard's link RTCP. Opaque to the
/// mesh: carried from configuration to the peer for the media plane.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardEndpoint {
    /// `relay_media_ip:udp_port_start+i`.
    pub media_addr: SocketAddr,
    /// The SSRC this shard's RTCP on the link uses.
    pub rtcp_ssrc: u32,
}

/// A handshake nonce: 32 random bytes, fresh for every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nonce(#[serde(with = "b64_array")] pub [u8; NONCE_LEN]);

/// An HMAC-SHA256 tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mac(#[serde(with = "b64_array")] pub [u8; 32]);

/// Each side's introduction. The responder's carries its MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's node id.
    pub node: NodeId,
    /// The sender's boot.
    pub boot: BootId,
    /// The sender's nonce for this connection.
    pub nonce: Nonce,
    /// The sender's shards' relay endpoints.
    pub shards: Vec<ShardEndpoint>,
    /// The sender's [`MESH_VERSION`].
    pub version: u32,
    /// The responder's MAC; absent in the dialer's `Hello`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// What crosses during the handshake, one message per frame, as JSON tagged by `"type"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HandshakeMessage {
    /// Steps 1 and 2.
    Hello(Hello),
    /// Step 3: the dialer's MAC.
    Confirm {
        /// `mac_a`.
        mac: Mac,
    },
    /// The sender gives up, and says why.
    Refuse {
        /// Why.
        reason: RefuseReason,
    },
}

impl HandshakeMessage {
    /// The message as a frame body.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("handshake messages always serialize")
    }

    /// Reads a frame body.
    pub fn decode(body: &[u8]) -> Result<Self, HandshakeError> {
        serde_json::from_slice(body).map_err(|e| HandshakeError::Malformed(e.to_string()))
    }

    fn name(&self) -> &'static str {
        match self {
            HandshakeMessage::Hello(h) if h.mac.is_some() => "hello with mac",
            HandshakeMessage::Hello(_) => "hello",
            HandshakeMessage::Confirm { .. } => "confirm",
            HandshakeMessage::Refuse { .. } => "refuse",
        }
    }
}

/// Why a side gave up, as it tells the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefuseReason {
    /// See [`HandshakeError::Malformed`].
    Malformed,
    /// See [`HandshakeError::UnexpectedMessage`].
    UnexpectedMessage,
    /// See [`HandshakeError::VersionMismatch`].
    VersionMismatch,
    /// See [`HandshakeError::SelfConnect`].
    SelfConnect,
    /// See [`HandshakeError::WrongDirection`].
    WrongDirection,
    /// See [`HandshakeError::UnexpectedPeer`].
    UnexpectedPeer,
    /// See [`HandshakeError::BadMac`].
    BadMac,
    /// A reason this build does not know.
    #[serde(other)]
    Other,
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A frame body that is not a handshake message, or a `Hello` with an empty or overlong id
    /// or too many shards.
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// A message that does not fit the step: the dialer's `Hello` carrying a MAC, the
    /// responder's lacking one, a `Confirm` before any `Hello`, anything after the end.
    #[error("got {got} while waiting for {expected}")]
    UnexpectedMessage {
        /// What the step waits for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The peer speaks another [`MESH_VERSION`].
    #[error("the peer speaks mesh version {theirs}, this node {ours}")]
    VersionMismatch {
        /// [`MESH_VERSION`].
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer has this node's id: a node reached itself, or two nodes share a configured id.
    #[error("the peer has this node's id")]
    SelfConnect,
    /// The dialer's node id is not the lower of the two: the other side should have dialed.
    #[error("the dialer's node id is not the lower of the two")]
    WrongDirection,
    /// The peer is not the node and boot dialed (dialer), or not a listed live node (responder).
    /// Usually the registry has not caught up with a restart yet; not an authentication failure.
    #[error("peer {}/{} is not the one expected", .node.escaped(), .boot.escaped())]
    UnexpectedPeer {
        /// The id the peer gave.
        node: NodeId,
        /// The boot the peer gave.
        boot: BootId,
    },
    /// The peer's MAC does not check out: another secret, a tampered message or a replay.
    #[error("the peer's MAC does not check out")]
    BadMac,
    /// The peer refused the handshake.
    #[error("the peer refused: {0:?}")]
    Refused(RefuseReason),
}

impl HandshakeError {
    /// Whether this counts as an authentication failure (counted, and the dialer backs off up to
    /// 30 s). Only a peer that is not the one expected is not: that is the registry lagging.
    pub fn is_auth_failure(&self) -> bool {
        !matches!(self, HandshakeError::UnexpectedPeer { .. } | HandshakeError::Refused(RefuseReason::UnexpectedPeer))
    }

    fn refuse_reason(&self) -> Option<RefuseReason> {
        Some(match self {
            HandshakeError::Malformed(_) => RefuseReason::Malformed,
            HandshakeError::UnexpectedMessage { .. } => RefuseReason::UnexpectedMessage,
            HandshakeError::VersionMismatch { .. } => RefuseReason::VersionMismatch,
            HandshakeError::SelfConnect => RefuseReason::SelfConnect,
            HandshakeError::WrongDirection => RefuseReason::WrongDirection,
            HandshakeError::UnexpectedPeer { .. } => RefuseReason::UnexpectedPeer,
            HandshakeError::BadMac => RefuseReason::BadMac,
            // Never answer a refusal: two failing sides would refuse each other's refusals.
            HandshakeError::Refused(_) => return None,
        })
    }
}

/// This node as the handshake presents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    /// Its id.
    pub node: NodeId,
    /// Its boot.
    pub boot: BootId,
    /// Its shards' relay endpoints.
    pub shards: Vec<ShardEndpoint>,
}

/// A successful handshake: who the peer is and the link's keys, oriented for this side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Established {
    /// The peer's node id.
    pub node: NodeId,
    /// The peer's boot.
    pub boot: BootId,
    /// The peer's shards' relay endpoints.
    pub shards: Vec<ShardEndpoint>,
    /// The link's keys.
    pub keys: LinkKeys,
    /// Which end this side is.
    pub side: Side,
}

/// Decides whether the responder talks to a peer that introduced itself (by id and boot).
pub type Admit = Box<dyn Fn(&NodeId, &BootId) -> bool + Send>;

enum State {
    DialerAwaitsHello { hello_a: Hello, expect: (NodeId, BootId) },
    ResponderAwaitsHello { admit: Admit },
    ResponderAwaitsConfirm { hello_a: Hello, hello_b: Hello },
    Done,
}

/// One side of one handshake. Feed it the peer's frames with [`Handshake::handle_bytes`] (or
/// [`Handshake::handle_message`]); send everything [`Handshake::poll_transmit`] gives, also
/// after an error (the `Refuse`); take the result from [`Handshake::poll_established`]. The
/// caller owns the timeout.
pub struct Handshake {
    local: LocalNode,
    secret: ClusterSecret,
    nonce: [u8; NONCE_LEN],
    state: State,
    outbox: VecDeque<HandshakeMessage>,
    established: Option<Established>,
    peer_node: Option<NodeId>,
}

impl Handshake {
    /// The dialer's side, expecting `expect` (the node and boot the registry lists at the
    /// address dialed). Queues its `Hello`.
    pub fn dialer(
        local: LocalNode,
        secret: &ClusterSecret,
        nonce_a: [u8; NONCE_LEN],
        expect: (NodeId, BootId),
    ) -> Self {
        let hello_a = Hello {
            node: local.node.clone(),
            boot: local.boot.clone(),
            nonce: Nonce(nonce_a),
            shards: local.shards.clone(),
            version: MESH_VERSION,
            mac: None,
        };
        let mut handshake =
            Handshake::new(local, secret, nonce_a, State::DialerAwaitsHello { hello_a: hello_a.clone(), expect });
        handshake.outbox.push_back(HandshakeMessage::Hello(hello_a));
        handshake
    }

    /// The responder's side; `admit` says which peers it talks to (the listed live nodes).
    pub fn responder(local: LocalNode, secret: &ClusterSecret, nonce_b: [u8; NONCE_LEN], admit: Admit) -> Self {
        Handshake::new(local, secret, nonce_b, State::ResponderAwaitsHello { admit })
    }

    fn new(local: LocalNode, secret: &ClusterSecret, nonce: [u8; NONCE_LEN], state: State) -> Self {
        Handshake {
            local,
            secret: secret.clone(),
            nonce,
            state,
            outbox: VecDeque::new(),
            established: None,
            peer_node: None,
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<HandshakeMessage> {
        self.outbox.pop_front()
    }

    /// The outcome, once the handshake succeeded (given once).
    pub fn poll_established(&mut self) -> Option<Established> {
        self.established.take()
    }

    /// The node id the peer gave, once its `Hello` came (not yet authenticated before the end).
    pub fn peer_node(&self) -> Option<&NodeId> {
        self.peer_node.as_ref()
    }

    /// Handles one frame body from the peer.
    pub fn handle_bytes(&mut self, body: &[u8]) -> Result<(), HandshakeError> {
        match HandshakeMessage::decode(body) {
            Ok(message) => self.handle_message(message),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Handles one message from the peer. After an error the handshake is over: send what
    /// [`Handshake::poll_transmit`] gives, then close.
    pub fn handle_message(&mut self, message: HandshakeMessage) -> Result<(), HandshakeError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let result = match (state, message) {
            (_, HandshakeMessage::Refuse { reason }) => Err(HandshakeError::Refused(reason)),
            (State::DialerAwaitsHello { hello_a, expect }, HandshakeMessage::Hello(hello_b)) => {
                self.on_responder_hello(hello_a, hello_b, expect)
            }
            (State::ResponderAwaitsHello { admit }, HandshakeMessage::Hello(hello_a)) => {
                self.on_dialer_hello(hello_a, &admit)
            }
            (State::ResponderAwaitsConfirm { hello_a, hello_b }, HandshakeMessage::Confirm { mac }) => {
                self.on_confirm(&hello_a, &hello_b, mac)
            }
            (state, message) => {
                let expected = match state {
                    State::DialerAwaitsHello { .. } => "hello with mac",
                    State::ResponderAwaitsHello { .. } => "hello",
                    State::ResponderAwaitsConfirm { .. } => "confirm",
                    State::Done => "nothing",
                };
                Err(HandshakeError::UnexpectedMessage { expected, got: message.name() })
            }
        };
        result.map_err(|e| self.fail(e))
    }

    fn fail(&mut self, error: HandshakeError) -> HandshakeError {
        self.state = State::Done;
        if let Some(reason) = error.refuse_reason() {
            self.outbox.push_back(HandshakeMessage::Refuse { reason });
        }
        error
    }

    fn on_dialer_hello(&mut self, hello_a: Hello, admit: &Admit) -> Result<(), HandshakeError> {
        if hello_a.mac.is_some() {
            return Err(HandshakeError::UnexpectedMessage { expected: "hello", got: "hello with mac" });
        }
        self.check_hello(&hello_a)?;
        if hello_a.node >= self.local.node {
            return Err(HandshakeError::WrongDirection);
        }
        if !admit(&hello_a.node, &hello_a.boot) {
            return Err(HandshakeError::UnexpectedPeer { node: hello_a.node, boot: hello_a.boot });
        }
        let mut hello_b = Hello {
            node: self.local.node.clone(),
            boot: self.local.boot.clone(),
            nonce: Nonce(self.nonce),
            shards: self.local.shards.clone(),
            version: MESH_VERSION,
            mac: None,
        };
        hello_b.mac = Some(self.sign(RESPONDER_LABEL, &hello_a, &hello_b));
        self.outbox.push_back(HandshakeMessage::Hello(hello_b.clone()));
        self.state = State::ResponderAwaitsConfirm { hello_a, hello_b };
        Ok(())
    }

    fn on_responder_hello(
        &mut self,
        hello_a: Hello,
        hello_b: Hello,
        expect: (NodeId, BootId),
    ) -> Result<(), HandshakeError> {
        let Some(mac_b) = hello_b.mac else {
            return Err(HandshakeError::UnexpectedMessage { expected: "hello with mac", got: "hello" });
        };
        self.check_hello(&hello_b)?;
        self.verify(RESPONDER_LABEL, &hello_a, &hello_b, mac_b)?;
        if self.local.node >= hello_b.node {
            return Err(HandshakeError::WrongDirection);
        }
        if (&hello_b.node, &hello_b.boot) != (&expect.0, &expect.1) {
            return Err(HandshakeError::UnexpectedPeer { node: hello_b.node, boot: hello_b.boot });
        }
        let mac_a = self.sign(DIALER_LABEL, &hello_a, &hello_b);
        self.outbox.push_back(HandshakeMessage::Confirm { mac: mac_a });
        self.finish(&hello_a, &hello_b, Side::Dialer);
        Ok(())
    }

    fn on_confirm(&mut self, hello_a: &Hello, hello_b: &Hello, mac_a: Mac) -> Result<(), HandshakeError> {
        self.verify(DIALER_LABEL, hello_a, hello_b, mac_a)?;
        self.finish(hello_a, hello_b, Side::Responder);
        Ok(())
    }

    /// Checks what a peer's `Hello` says before anything is computed from it.
    fn check_hello(&mut self, hello: &Hello) -> Result<(), HandshakeError> {
        if hello.version != MESH_VERSION {
            return Err(HandshakeError::VersionMismatch { ours: MESH_VERSION, theirs: hello.version });
        }
        for id in [hello.node.as_str(), hello.boot.as_str()] {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(HandshakeError::Malformed(format!("an id of {} bytes", id.len())));
            }
        }
        if hello.shards.len() > MAX_SHARDS {
            return Err(HandshakeError::Malformed(format!("{} shards", hello.shards.len())));
        }
        self.peer_node = Some(hello.node.clone());
        if hello.node == self.local.node {
            return Err(HandshakeError::SelfConnect);
        }
        Ok(())
    }

    fn finish(&mut self, hello_a: &Hello, hello_b: &Hello, side: Side) {
        let parties = LinkParties {
            node_a: &hello_a.node,
            boot_a: &hello_a.boot,
            node_b: &hello_b.node,
            boot_b: &hello_b.boot,
            nonce_a: &hello_a.nonce.0,
            nonce_b: &hello_b.nonce.0,
        };
        let keys = parties.derive(&self.secret, side);
        let peer = match side {
            Side::Dialer => hello_b,
            Side::Responder => hello_a,
        };
        self.established = Some(Established {
            node: peer.node.clone(),
            boot: peer.boot.clone(),
            shards: peer.shards.clone(),
            keys,
            side,
        });
    }

    fn sign(&self, label: &[u8], hello_a: &Hello, hello_b: &Hello) -> Mac {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.secret.expose());
        let tag = hmac::sign(&key, &transcript(label, hello_a, hello_b));
        Mac(tag.as_ref().try_into().expect("HMAC-SHA256 tags have 32 bytes"))
    }

    fn verify(&self, label: &[u8], hello_a: &Hello, hello_b: &Hello, mac: Mac) -> Result<(), HandshakeError> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.secret.expose());
        // Constant time: ring compares the whole tag whatever the first differing byte.
        hmac::verify(&key, &transcript(label, hello_a, hello_b), &mac.0).map_err(|_| HandshakeError::BadMac)
    }
}

/// What a MAC covers: the label, then both `Hello`s but their MACs, every field length-prefixed.
fn transcript(label: &[u8], hello_a: &Hello, hello_b: &Hello) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    push_field(&mut out, label);
    push_field(&mut out, &hello_a.nonce.0);
    push_field(&mut out, &hello_b.nonce.0);
    for hello in [hello_a, hello_b] {
        push_field(&mut out, hello.node.as_str().as_bytes());
        push_field(&mut out, hello.boot.as_str().as_bytes());
        push_field(&mut out, &hello.version.to_be_bytes());
        let mut shards = Vec::new();
        for shard in &hello.shards {
            push_field(&mut shards, shard.media_addr.to_string().as_bytes());
            push_field(&mut shards, &shard.rtcp_ssrc.to_be_bytes());
        }
        push_field(&mut out, &shards);
    }
    out
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
