//! What only a publishing connection has: the tracks it sends, how its SSRCs and RTX streams
//! map to them, and when its uplink's losses and dynacast pauses are next due.

use rtc::data_channel::RTCDataChannelId;
use std::collections::HashMap;
use std::time::Instant;

use crate::TrackKey;
use crate::shard::uplink::RepairExtensionIds;

#[derive(Default)]
pub(crate) struct PublisherConn {
    /// The "data" channel the client opened.
    pub data_channel: Option<RTCDataChannelId>,
    /// Tracks by the rtc stack's track id, then by SSRC (with the layer) once seen.
    pub ingress_tracks: HashMap<String, TrackKey>,
    pub ingress_ssrcs: HashMap<u32, (TrackKey, u8)>,
    /// mid -> track, so a re-offer keeps existing tracks.
    pub published_mids: HashMap<String, TrackKey>,
    /// The header extensions that name an RTX packet's layer, once negotiated.
    pub repair_ids: Option<RepairExtensionIds>,
    /// RTX SSRC -> the SSRC of the layer it repairs, learned from repaired rids.
    pub repair_ssrcs: HashMap<u32, u32>,
    /// When packets missing on its uplink are next due to be NACKed.
    pub uplink_nack_at: Option<Instant>,
    /// When a dynacast pause of one of its tracks is due.
    pub dynacast_deadline: Option<Instant>,
}

impl PublisherConn {
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.uplink_nack_at, self.dynacast_deadline].into_iter().flatten().min()
    }
}
