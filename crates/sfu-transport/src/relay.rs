//! What the control plane tells the media plane about links to other nodes (docs/cluster.md,
//! "The relay"): the keys of each link, the tracks that arrive over one, and where they land.
//!
//! A link carries media between two nodes over the shards' own UDP sockets, as SRTP
//! (AEAD_AES_128_GCM) under keys the control plane derived for that link alone. There is no ICE
//! and no DTLS between nodes: packets are found by SSRC, never by source address. The node that
//! receives a track picks its SSRCs, so they are unique on the receiving side.

use sfu_proto::{LayerInfo, ParticipantId, TrackId, TrackKind, TrackSource};
use std::net::SocketAddr;

use crate::TrackKey;

/// One link to a peer node, named by the control plane; a new one for every control connection
/// (its keys are new too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// One direction's SRTP master key and salt (AEAD_AES_128_GCM, RFC 7714). Not printable: a
/// key in a log would open the link's media.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyMaterial {
    pub key: [u8; 16],
    pub salt: [u8; 12],
}

impl std::fmt::Debug for SrtpKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpKeyMaterial { .. }")
    }
}

impl SrtpKeyMaterial {
    pub(crate) fn srtp_keys(&self) -> sfu_srtp::SrtpKeys {
        sfu_srtp::SrtpKeys {
            profile: sfu_srtp::SrtpProfile::AeadAes128Gcm,
            master_key: self.key.to_vec(),
            master_salt: self.salt.to_vec(),
        }
    }
}

/// One shard of a node as its peers see it: where it receives relay media, and the SSRC its
/// link RTCP (NACKs, PLIs) carries. Each shard has its own, so no two shards seal RTCP with the
/// same SSRC under one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayEndpoint {
    pub media: SocketAddr,
    pub rtcp_ssrc: u32,
}

/// A link as every shard needs it.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    pub link: LinkId,
    /// The `peer` label of the link's metrics: the peer's relay address (node ids change with
    /// every boot, its address does not).
    pub peer: String,
    /// What this node seals with.
    pub srtp_out: SrtpKeyMaterial,
    /// What the peer seals with.
    pub srtp_in: SrtpKeyMaterial,
    /// The peer's shards (from its handshake): its link RTCP is recognised by their SSRCs, and
    /// media from their addresses with an SSRC nobody knows is counted as such.
    pub peer_shards: Vec<RelayEndpoint>,
}

/// A track published on a peer node, to be received here over a link.
#[derive(Clone, Debug)]
pub struct RelayTrackSpec {
    pub track_id: TrackId,
    pub publisher: ParticipantId,
    pub kind: TrackKind,
    pub mime: String,
    pub clock_rate: u32,
    /// Simulcast layers lowest first, as the publisher's node orders them; empty for one layer.
    pub layers: Vec<LayerInfo>,
    pub source: TrackSource,
}

/// Where a relay track lands: its key here (subscribe local connections to it as to any
/// published track), and what the peer must send it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayTrack {
    pub key: TrackKey,
    /// The receiving shard's media address (its announced address; a node behind NAT
    /// substitutes its `relay_media_ip`).
    pub dest: SocketAddr,
    /// One SSRC per layer, lowest first (one for a single-layer track): the peer sends layer
    /// `i` as `ssrcs[i]`.
    pub ssrcs: Vec<u32>,
}
