//! One peer connection on a shard, with what the shard knows about it.

use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::RTCPeerConnection;
use sfu_proto::ParticipantId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::consent::Consent;
use super::egress::{EgressBwe, InboundRtcp, Outbound};
use super::uplink::RepairExtensionIds;
use crate::TrackKey;
use crate::peer_factory::Direction;

pub(crate) struct Conn {
    pub owner: ParticipantId,
    pub direction: Direction,
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
    /// Publisher side: the "data" channel the client opened.
    pub data_channel: Option<RTCDataChannelId>,
    /// Publisher side: tracks by the rtc stack's track id, then by SSRC once seen.
    pub ingress_tracks: HashMap<String, TrackKey>,
    pub ingress_ssrcs: HashMap<u32, (TrackKey, u8)>,
    /// Publisher side: mid -> track, so a re-offer keeps existing tracks.
    pub published_mids: HashMap<String, TrackKey>,
    /// Publisher side: the header extensions that name an RTX packet's layer, once negotiated.
    pub repair_ids: Option<RepairExtensionIds>,
    /// Publisher side: RTX SSRC -> the SSRC of the layer it repairs, learned from repaired rids.
    pub repair_ssrcs: HashMap<u32, u32>,
    /// Publisher side: when packets missing on its uplink are next due to be NACKed.
    pub uplink_nack_at: Option<Instant>,
    /// Subscriber side: the tracks it receives. Each one's down track lives in the track's
    /// fan-out (`Fanout`), beside its forwarder, where the per-packet path finds it.
    pub subscribed: Vec<TrackKey>,
    /// Subscriber side: the bandwidth estimate of this connection.
    pub bwe: Option<EgressBwe>,
    /// Publisher side: when a dynacast pause of one of its tracks is due.
    pub dynacast_deadline: Option<Instant>,
    /// Subscriber side: the SRTP context and path its media is written on, once DTLS is done.
    pub outbound: Option<Outbound>,
    /// Subscriber side: its RTCP, opened by the shard once DTLS is done.
    pub inbound_rtcp: Option<InboundRtcp>,
    /// Subscriber side: when its next RTCP sender reports are due.
    pub sender_report_at: Option<Instant>,
}

impl Conn {
    pub fn new(owner: ParticipantId, direction: Direction, pc: RTCPeerConnection, now: Instant) -> Self {
        Self {
            owner,
            direction,
            pc,
            path_changed: false,
            connected: false,
            consent: Consent::new(now),
            reconnect_on_word: false,
            deadline: None,
            dirty: false,
            data_channel: None,
            ingress_tracks: HashMap::new(),
            ingress_ssrcs: HashMap::new(),
            published_mids: HashMap::new(),
            repair_ids: None,
            repair_ssrcs: HashMap::new(),
            uplink_nack_at: None,
            subscribed: Vec::new(),
            bwe: None,
            dynacast_deadline: None,
            outbound: None,
            inbound_rtcp: None,
            sender_report_at: None,
        }
    }
}

/// The client's address on the ICE pair the stack selected, if it selected one.
pub(crate) fn selected_remote(pc: &mut RTCPeerConnection) -> Option<SocketAddr> {
    let sender = pc.get_senders().next()?;
    let sender = pc.rtp_sender(sender)?;
    let pair = sender.transport()?.ice_transport().get_selected_candidate_pair()?;
    let ip = pair.remote().address.parse().ok()?;
    Some(SocketAddr::new(ip, pair.remote().port))
}
