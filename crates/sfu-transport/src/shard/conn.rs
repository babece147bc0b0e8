//! One peer connection on a shard: the transport state every connection has, and the state of
//! its role, which is either publishing (media comes in) or subscribing (media goes out).

mod publisher;
mod subscriber;

pub(crate) use publisher::PublisherConn;
pub(crate) use subscriber::SubscriberConn;

use rtc::peer_connection::RTCPeerConnection;
use sfu_proto::ParticipantId;
use std::net::SocketAddr;
use std::time::Instant;

use super::consent::Consent;
use crate::peer_factory::Direction;
use crate::remote::Remote;

pub(crate) struct Conn {
    pub owner: ParticipantId,
    pub pc: RTCPeerConnection,
    /// ICE validated a new client address: the selected ICE pair may have changed.
    pub path_changed: bool,
    pub connected: bool,
    /// Whether the client is still there (RFC 7675), from everything authenticated it sends.
    pub consent: Consent,
    /// Consent lapsed while connected: a word from the client reconnects it.
    pub reconnect_on_word: bool,
    /// The deadline this connection is filed under in the shard's timer set.
    pub deadline: Option<Instant>,
    /// Queued for draining at the next flush.
    pub dirty: bool,
    pub role: Role,
}

/// What a connection does, with the state only that role has.
// One per connection, beside a peer connection far larger than either: boxing the subscriber
// side would add a pointer chase to every forwarded copy for no memory saved worth having.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Role {
    Publisher(PublisherConn),
    Subscriber(SubscriberConn),
}

impl Conn {
    pub fn new(owner: ParticipantId, role: Role, pc: RTCPeerConnection, now: Instant) -> Self {
        Self {
            owner,
            pc,
            path_changed: false,
            connected: false,
            consent: Consent::new(now),
            reconnect_on_word: false,
            deadline: None,
            dirty: false,
            role,
        }
    }

    pub fn direction(&self) -> Direction {
        match self.role {
            Role::Publisher(_) => Direction::Ingress,
            Role::Subscriber(_) => Direction::Egress,
        }
    }

    /// The earliest deadline of the role's own timers.
    pub fn role_deadline(&self) -> Option<Instant> {
        match &self.role {
            Role::Publisher(p) => p.poll_timeout(),
            Role::Subscriber(s) => s.poll_timeout(),
        }
    }
}

impl Role {
    pub fn publisher(&self) -> Option<&PublisherConn> {
        match self {
            Role::Publisher(p) => Some(p),
            Role::Subscriber(_) => None,
        }
    }

    pub fn publisher_mut(&mut self) -> Option<&mut PublisherConn> {
        match self {
            Role::Publisher(p) => Some(p),
            Role::Subscriber(_) => None,
        }
    }

    pub fn subscriber(&self) -> Option<&SubscriberConn> {
        match self {
            Role::Subscriber(s) => Some(s),
            Role::Publisher(_) => None,
        }
    }

    pub fn subscriber_mut(&mut self) -> Option<&mut SubscriberConn> {
        match self {
            Role::Subscriber(s) => Some(s),
            Role::Publisher(_) => None,
        }
    }
}

/// The client's address on the ICE pair the stack selected, if it selected one, with the
/// transport of that pair.
pub(crate) fn selected_remote(pc: &mut RTCPeerConnection) -> Option<Remote> {
    use rtc::peer_connection::transport::RTCIceProtocol;
    let sender = pc.get_senders().next()?;
    let sender = pc.rtp_sender(sender)?;
    let pair = sender.transport()?.ice_transport().get_selected_candidate_pair()?;
    let ip = pair.remote().address.parse().ok()?;
    let addr = SocketAddr::new(ip, pair.remote().port);
    Some(match pair.local().protocol {
        RTCIceProtocol::Tcp => Remote::tcp(addr),
        _ => Remote::udp(addr),
    })
}
