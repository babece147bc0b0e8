//! Data between clients and this node's media sockets: Send indications and ChannelData from a
//! client out of its relay socket, and what comes back to that socket in to the client as
//! ChannelData (when a channel is bound) or a Data indication. Nothing moves without a live
//! permission for a media address of this node; nothing is answered (indications and
//! ChannelData have no responses), only counted.

use rtc_stun::message::{CLASS_INDICATION, METHOD_DATA, Message, MessageType};
use rtc_turn::proto::data::Data;
use rtc_turn::proto::peeraddr::PeerAddress;
use std::net::SocketAddr;
use std::time::Instant;

use super::{AllocId, ClientAddr, Transmit, TurnCore};
use crate::framing::CHANNEL_HEADER;
use crate::wire;

impl TurnCore {
    pub(super) fn send_indication(&mut self, now: Instant, client: ClientAddr, m: &Message) {
        let (Some(peer), Ok(data)) = (wire::peer_address(m), m.get(rtc_stun::attributes::ATTR_DATA)) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        self.relay_to_peer(now, client, peer, data);
    }

    pub(super) fn channel_data_from_client(&mut self, now: Instant, client: ClientAddr, bytes: &[u8]) {
        let number = u16::from_be_bytes([bytes[0], bytes[1]]);
        let length = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        let Some(data) = bytes.get(CHANNEL_HEADER..CHANNEL_HEADER + length) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let peer = self.allocation_of(client).and_then(|(_, a)| a.channel_peer(number, now));
        match peer {
            Some(peer) => self.relay_to_peer(now, client, peer, data.to_vec()),
            None => self.stats.dropped_no_permission += 1,
        }
    }

    /// Sends `data` from `client`'s relay socket to `peer`, if it may go there.
    fn relay_to_peer(&mut self, now: Instant, client: ClientAddr, peer: SocketAddr, data: Vec<u8>) {
        let Some((id, a)) = self.allocation_of(client) else {
            self.stats.dropped_no_allocation += 1;
            return;
        };
        // The permission was only granted for this node's media addresses; a Send may still
        // name any address, so the address is checked again here.
        let target = self.config.media.local_for(peer).filter(|_| a.has_permission(peer.ip(), now));
        let Some(to) = target else {
            self.stats.dropped_no_permission += 1;
            return;
        };
        self.stats.bytes_to_peers += data.len() as u64;
        self.transmits.push_back(Transmit::ToPeer { alloc: id, to, data });
    }

    /// A datagram that reached allocation `id`'s relay socket from `from`.
    pub fn handle_peer(&mut self, now: Instant, id: AllocId, from: SocketAddr, bytes: &[u8]) {
        let Some(a) = self.allocations.get(&id).filter(|a| a.relayed.is_some()) else {
            self.stats.dropped_no_allocation += 1;
            return;
        };
        // Only this node's media sockets, and only with a permission for them.
        let Some(peer) = self.config.media.announced_for(from).filter(|p| a.has_permission(p.ip(), now)) else {
            self.stats.dropped_no_permission += 1;
            return;
        };
        if bytes.len() > u16::MAX as usize - CHANNEL_HEADER {
            self.stats.dropped_malformed += 1;
            return;
        }
        let client = a.client;
        let data = match a.channel_of(peer, now) {
            Some(number) => Some(channel_data(number, bytes, client.is_stream())),
            None => {
                let typ = MessageType::new(METHOD_DATA, CLASS_INDICATION);
                let attrs: Vec<Box<dyn rtc_stun::message::Setter>> =
                    vec![Box::new(PeerAddress { ip: peer.ip(), port: peer.port() }), Box::new(Data(bytes.to_vec()))];
                wire::indication(typ, attrs)
            }
        };
        if data.is_some() {
            self.stats.bytes_to_clients += bytes.len() as u64;
        }
        self.send_to_client(client, data);
    }

    fn allocation_of(&self, client: ClientAddr) -> Option<(AllocId, &super::Allocation)> {
        let id = *self.by_client.get(&client)?;
        let a = self.allocations.get(&id)?;
        a.relayed.is_some().then_some((id, a))
    }
}

/// A ChannelData message; over a stream padded to a multiple of 4 bytes (RFC 8656 section 12.5).
fn channel_data(number: u16, payload: &[u8], padded: bool) -> Vec<u8> {
    let len = if padded { payload.len().next_multiple_of(4) } else { payload.len() };
    let mut out = Vec::with_capacity(CHANNEL_HEADER + len);
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(CHANNEL_HEADER + len, 0);
    out
}
