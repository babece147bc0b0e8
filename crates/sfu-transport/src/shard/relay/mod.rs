//! A shard's side of the links to other nodes (docs/cluster.md, "The relay"): each open link's
//! SRTP contexts, and the tables that find a relayed datagram's link and track by SSRC.
//!
//! A node receiving a track over a link picks its SSRCs; a shard of it issues them from its own
//! residue class (`ssrc % shards == index`) and never twice on a link, so no two streams under
//! one key share an SSRC. Datagrams are matched by SSRC (RTP) or sender SSRC (RTCP), never by
//! source address; the peer's addresses only tell a stray relay datagram from noise.

pub(crate) mod inbound;
mod link;
pub(crate) mod out;
mod stats;

pub(crate) use link::{Link, relay_ssrc};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use stats::LinkStats;
pub(crate) use stats::{Direction, RelayDrop};

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::relay::{LinkId, LinkSpec};
use crate::{MediaError, TrackKey};

/// Tries at drawing a free SSRC before giving up (the table would have to be nearly full).
const SSRC_DRAWS: usize = 64;

/// One link RTCP SSRC per shard, all different (and never 0): two shards sealing RTCP with the
/// same SSRC under one key would repeat SRTCP indices.
pub(crate) fn rtcp_ssrcs(shards: usize) -> Vec<u32> {
    let mut ssrcs: Vec<u32> = Vec::with_capacity(shards);
    while ssrcs.len() < shards {
        let ssrc = rand::random::<u32>();
        if ssrc != 0 && !ssrcs.contains(&ssrc) {
            ssrcs.push(ssrc);
        }
    }
    ssrcs
}

/// Where an SSRC a shard receives on a link goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InboundSsrc {
    pub link: LinkId,
    pub key: TrackKey,
    pub layer: u8,
}

/// What a datagram that no client's address claimed is, to the relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RelayRoute {
    /// RTP on one of this shard's relay tracks.
    Media(InboundSsrc),
    /// RTCP from a peer shard of these links (normally one; two peers may draw the same SSRC).
    Rtcp(Vec<LinkId>),
    /// RTP or RTCP from a peer's address that names no SSRC known here.
    Unknown(LinkId),
    /// Not the relay's.
    NotRelay,
}

/// One shard's links and relay tables.
pub(crate) struct Relay {
    index: usize,
    shards: usize,
    /// The SSRC this shard's link RTCP carries (the same on every link: each has its own keys).
    pub rtcp_ssrc: u32,
    pub links: HashMap<LinkId, Link>,
    /// The SSRCs this shard receives on links.
    pub inbound: HashMap<u32, InboundSsrc>,
    /// Peer shards' RTCP SSRCs.
    rtcp_senders: HashMap<u32, Vec<LinkId>>,
    /// Peer shards' media addresses.
    peer_addrs: HashMap<SocketAddr, LinkId>,
    /// What this shard sends on each link, by SSRC: the track and layer (to place the peer's
    /// NACKs and PLIs).
    pub outbound: HashMap<(LinkId, u32), (TrackKey, u8)>,
    /// When losses on relay tracks are next due to be NACKed over their links.
    pub nack_at: Option<std::time::Instant>,
}

impl Relay {
    pub fn new(index: usize, shards: usize, rtcp_ssrc: u32) -> Self {
        Self {
            index,
            shards: shards.max(1),
            rtcp_ssrc,
            links: HashMap::new(),
            inbound: HashMap::new(),
            rtcp_senders: HashMap::new(),
            peer_addrs: HashMap::new(),
            outbound: HashMap::new(),
            nack_at: None,
        }
    }

    /// Opens `spec`'s link (replacing its keys if it is open already: what it carries stays).
    pub fn open_link(&mut self, spec: &LinkSpec) -> Result<(), String> {
        let mut link = Link::new(spec, self.index)?;
        if let Some(old) = self.links.remove(&spec.link) {
            link.issued = old.issued;
            link.sent = old.sent;
        }
        self.forget_peer(spec.link);
        for peer in &spec.peer_shards {
            self.rtcp_senders.entry(peer.rtcp_ssrc).or_default().push(spec.link);
            self.peer_addrs.insert(peer.media, spec.link);
        }
        self.links.insert(spec.link, link);
        Ok(())
    }

    /// Forgets `link` and every table entry naming it; returns the relay tracks it fed.
    pub fn close_link(&mut self, link: LinkId) -> Vec<TrackKey> {
        self.links.remove(&link);
        self.forget_peer(link);
        self.outbound.retain(|(l, _), _| *l != link);
        let mut tracks: Vec<TrackKey> =
            self.inbound.values().filter(|entry| entry.link == link).map(|entry| entry.key).collect();
        tracks.sort_unstable();
        tracks.dedup();
        self.inbound.retain(|_, entry| entry.link != link);
        tracks
    }

    fn forget_peer(&mut self, link: LinkId) {
        self.rtcp_senders.retain(|_, links| {
            links.retain(|l| *l != link);
            !links.is_empty()
        });
        self.peer_addrs.retain(|_, l| *l != link);
    }

    /// What `datagram` from `from` is to the relay.
    pub fn route(&self, datagram: &[u8], from: SocketAddr) -> RelayRoute {
        let Some((ssrc, rtcp)) = relay_ssrc(datagram) else { return RelayRoute::NotRelay };
        if rtcp {
            if let Some(links) = self.rtcp_senders.get(&ssrc) {
                return RelayRoute::Rtcp(links.clone());
            }
        } else if let Some(entry) = self.inbound.get(&ssrc) {
            return RelayRoute::Media(*entry);
        }
        match self.peer_addrs.get(&from) {
            Some(link) => RelayRoute::Unknown(*link),
            None => RelayRoute::NotRelay,
        }
    }

    /// `count` new SSRCs for a track this shard will receive on `link`, entered in the table
    /// as its layers 0, 1, ...
    pub fn issue_ssrcs(&mut self, link: LinkId, key: TrackKey, count: usize) -> Result<Vec<u32>, MediaError> {
        let Some(state) = self.links.get_mut(&link) else { return Err(MediaError::NoLink) };
        let classes = u32::try_from(self.shards).unwrap_or(u32::MAX);
        let residue = u32::try_from(self.index).unwrap_or(0) % classes;
        let mut ssrcs = Vec::with_capacity(count);
        for layer in 0..count {
            let free = (0..SSRC_DRAWS)
                .map(|_| rand::random::<u32>() % (u32::MAX / classes) * classes + residue)
                .find(|ssrc| *ssrc != 0 && !self.inbound.contains_key(ssrc) && !state.issued.contains(ssrc));
            let Some(ssrc) = free else {
                for ssrc in &ssrcs {
                    self.inbound.remove(ssrc);
                }
                return Err(MediaError::Rtc("no free relay SSRC".into()));
            };
            state.issued.insert(ssrc);
            let layer = u8::try_from(layer).unwrap_or(u8::MAX);
            self.inbound.insert(ssrc, InboundSsrc { link, key, layer });
            ssrcs.push(ssrc);
        }
        Ok(ssrcs)
    }

    /// Stops receiving on `ssrcs` (they stay issued: the peer may still be sending them).
    pub fn forget_inbound(&mut self, ssrcs: &[u32]) {
        for ssrc in ssrcs {
            self.inbound.remove(ssrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{RelayEndpoint, SrtpKeyMaterial};

    fn spec(link: u64, peer_rtcp: u32, peer_addr: &str) -> LinkSpec {
        LinkSpec {
            link: LinkId(link),
            peer: peer_addr.into(),
            srtp_out: SrtpKeyMaterial { key: [1; 16], salt: [1; 12] },
            srtp_in: SrtpKeyMaterial { key: [2; 16], salt: [2; 12] },
            peer_shards: vec![RelayEndpoint { media: peer_addr.parse().unwrap(), rtcp_ssrc: peer_rtcp }],
        }
    }

    fn rtp(ssrc: u32) -> Vec<u8> {
        let mut d = vec![0x80, 96, 0, 1, 0, 0, 0, 0];
        d.extend_from_slice(&ssrc.to_be_bytes());
        d.extend_from_slice(&[0; 20]);
        d
    }

    fn rtcp(sender: u32) -> Vec<u8> {
        let mut d = vec![0x81, 206, 0, 2];
        d.extend_from_slice(&sender.to_be_bytes());
        d.extend_from_slice(&[0; 24]);
        d
    }

    #[test]
    fn ssrcs_come_from_the_shards_class_unique_and_routed() {
        let mut relay = Relay::new(2, 3, 99);
        relay.open_link(&spec(1, 500, "10.0.0.2:7000")).unwrap();
        let key = TrackKey::new(2, 1);
        let ssrcs = relay.issue_ssrcs(LinkId(1), key, 3).unwrap();
        assert_eq!(ssrcs.len(), 3);
        assert!(ssrcs.iter().all(|s| s % 3 == 2), "{ssrcs:?}");
        let from = "10.9.9.9:1".parse().unwrap();
        for (layer, ssrc) in ssrcs.iter().enumerate() {
            let expected = InboundSsrc { link: LinkId(1), key, layer: layer as u8 };
            assert_eq!(relay.route(&rtp(*ssrc), from), RelayRoute::Media(expected));
        }
        assert_eq!(relay.issue_ssrcs(LinkId(7), key, 1).unwrap_err().to_string(), MediaError::NoLink.to_string());
    }

    #[test]
    fn rtcp_by_sender_and_strays_by_address() {
        let mut relay = Relay::new(0, 1, 99);
        relay.open_link(&spec(1, 500, "10.0.0.2:7000")).unwrap();
        relay.open_link(&spec(2, 500, "10.0.0.3:7000")).unwrap();
        let stranger = "10.9.9.9:1".parse().unwrap();
        let peer = "10.0.0.3:7000".parse().unwrap();
        assert_eq!(relay.route(&rtcp(500), stranger), RelayRoute::Rtcp(vec![LinkId(1), LinkId(2)]));
        assert_eq!(relay.route(&rtp(12345), peer), RelayRoute::Unknown(LinkId(2)));
        assert_eq!(relay.route(&rtp(12345), stranger), RelayRoute::NotRelay);
        assert_eq!(relay.route(b"\x00\x01 stun-ish", peer), RelayRoute::NotRelay);
    }

    #[test]
    fn closing_a_link_forgets_it_everywhere() {
        let mut relay = Relay::new(0, 1, 99);
        relay.open_link(&spec(1, 500, "10.0.0.2:7000")).unwrap();
        let key = TrackKey::new(0, 4);
        let ssrcs = relay.issue_ssrcs(LinkId(1), key, 2).unwrap();
        relay.outbound.insert((LinkId(1), 42), (TrackKey::new(0, 5), 0));
        assert_eq!(relay.close_link(LinkId(1)), vec![key]);
        let peer = "10.0.0.2:7000".parse().unwrap();
        assert_eq!(relay.route(&rtp(ssrcs[0]), peer), RelayRoute::NotRelay);
        assert_eq!(relay.route(&rtcp(500), peer), RelayRoute::NotRelay);
        assert!(relay.links.is_empty() && relay.inbound.is_empty() && relay.outbound.is_empty());
    }
}
