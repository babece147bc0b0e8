//! Repairing a publisher's uplink: its losses are NACKed by the shard (sfu_core::UplinkNacks),
//! and the retransmissions come back on RTX streams named by the repaired-rid header extension,
//! which the shard unwraps into the layer they repair (RFC 4588 section 4: the payload starts
//! with the original sequence number).

use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use sfu_core::{Arrival, UplinkNacks};
use sfu_proto::rtp_extensions;
use std::time::Instant;

use super::Shard;
use super::ingress::receiver_of;
use crate::metrics::IngressLimit;
use crate::{ConnId, TrackKey};

/// RTX streams one publisher connection may have: three simulcast layers per video track, for
/// a few tracks. Past it, further RTX streams are not unwrapped (their losses stay lost).
const MAX_REPAIR_STREAMS: usize = 32;

/// Incoming streams whose losses one track follows: its simulcast layers, and a few more for
/// SSRC changes. A publisher inventing SSRCs gets no more state than this.
const MAX_NACKED_STREAMS: usize = 8;

/// The header extension ids a publisher's answer gave the mid and the repaired rid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RepairExtensionIds {
    pub mid: u8,
    pub repaired_rid: u8,
}

impl RepairExtensionIds {
    /// From our answer (its `a=extmap` lines echo the offer's ids); `None` without both.
    pub fn from_sdp(sdp: &str) -> Option<Self> {
        let id_of = |uri: &str| {
            sdp.lines().find_map(|line| {
                let rest = line.trim_end().strip_prefix("a=extmap:")?;
                let (id, tail) = rest.split_once(' ')?;
                let id = id.split('/').next()?.parse::<u8>().ok()?;
                (tail.split_whitespace().next()? == uri).then_some(id)
            })
        };
        Some(Self { mid: id_of(rtp_extensions::MID)?, repaired_rid: id_of(rtp_extensions::REPAIRED_RID)? })
    }
}

/// The state one published video track keeps per incoming SSRC.
#[derive(Default)]
pub(crate) struct TrackUplink {
    streams: Vec<(u32, UplinkNacks)>,
}

impl TrackUplink {
    /// What the packet `seq` on `ssrc` is to its stream, and whether it showed packets missing
    /// (they are due to be NACKed at once); `None` when the track follows too many streams
    /// already.
    fn on_packet(&mut self, ssrc: u32, seq: u16, now: Instant) -> Option<(Arrival, bool)> {
        let index = match self.streams.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None if self.streams.len() < MAX_NACKED_STREAMS => {
                self.streams.push((ssrc, UplinkNacks::new()));
                self.streams.len() - 1
            }
            None => return None,
        };
        let nacks = &mut self.streams[index].1;
        let missing_before = nacks.missing();
        let arrival = nacks.on_packet(seq, now);
        Some((arrival, nacks.missing() > missing_before))
    }

    #[cfg(test)]
    fn poll_timeout(&self) -> Option<Instant> {
        self.streams.iter().filter_map(|(_, n)| n.poll_timeout()).min()
    }
}

impl Shard {
    /// An RTP packet the stack could not place (see `repair_tap`): unwrapped into its layer if
    /// it is RTX, otherwise dropped as the stack would have.
    pub(super) fn on_unbound_rtp(&mut self, id: ConnId, mut packet: rtc::rtp::Packet, arrived: Instant, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let rtx_ssrc = packet.header.ssrc;
        let primary = match conn.repair_ssrcs.get(&rtx_ssrc) {
            Some(primary) => *primary,
            None => {
                let Some(ids) = conn.repair_ids else { return };
                let (Some(mid), Some(rid)) =
                    (packet.header.get_extension(ids.mid), packet.header.get_extension(ids.repaired_rid))
                else {
                    return;
                };
                let (Ok(mid), Ok(rid)) = (std::str::from_utf8(&mid), std::str::from_utf8(&rid)) else { return };
                let Some(published) = conn.published_mids.get(mid).and_then(|key| self.published.get(key)) else {
                    return;
                };
                let Some(primary) =
                    published.layers.index_of(rid).and_then(|layer| published.layer_ssrcs.get(&layer)).copied()
                else {
                    // Its layer has sent nothing yet: nothing to repair.
                    return;
                };
                if conn.repair_ssrcs.len() >= MAX_REPAIR_STREAMS {
                    self.metrics.limit_hit(IngressLimit::RepairStreams).increment(1);
                    return;
                }
                tracing::debug!(conn = id.0, mid, rid, rtx_ssrc, primary, "publisher RTX stream");
                conn.repair_ssrcs.insert(rtx_ssrc, primary);
                primary
            }
        };
        // Padding-only RTX packets are the publisher's bandwidth probes: nothing to repair.
        if packet.payload.len() < 2 {
            return;
        }
        let original_seq = u16::from_be_bytes([packet.payload[0], packet.payload[1]]);
        packet.payload = packet.payload.slice(2..);
        packet.header.ssrc = primary;
        packet.header.sequence_number = original_seq;
        self.metrics.uplink_rtx_packets.increment(1);
        self.on_published_rtp(id, "", packet, arrived, now);
    }

    /// Notes a published video packet's arrival on its stream; false when it came before and
    /// must not be forwarded again.
    pub(super) fn note_uplink_arrival(&mut self, id: ConnId, key: TrackKey, ssrc: u32, seq: u16, now: Instant) -> bool {
        let Some(uplink) = self.published.get_mut(&key).and_then(|p| p.uplink.as_mut()) else { return true };
        let gap = match uplink.on_packet(ssrc, seq, now) {
            None => {
                self.metrics.limit_hit(IngressLimit::NackedStreams).increment(1);
                false
            }
            Some((Arrival::New, gap)) => gap,
            Some((Arrival::Repaired, _)) => {
                self.metrics.uplink_repairs.increment(1);
                false
            }
            Some((Arrival::Duplicate, _)) => {
                self.metrics.uplink_duplicates.increment(1);
                return false;
            }
        };
        // Only a new gap moves the NACK deadline (to now); retries are filed by the timeout.
        if gap && let Some(conn) = self.conns.get_mut(&id) {
            conn.uplink_nack_at = Some(conn.uplink_nack_at.map_or(now, |at| at.min(now)));
        }
        true
    }

    /// NACKs what is due on every track `id` publishes, and files the next deadline.
    pub(super) fn on_uplink_nack_timeout(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.uplink_nack_at.is_none_or(|at| at > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        let mut wrote = false;
        for key in conn.published_mids.values() {
            let Some(published) = self.published.get_mut(key) else { continue };
            let Some(uplink) = published.uplink.as_mut() else { continue };
            for (ssrc, nacks) in uplink.streams.iter_mut() {
                let given_up = nacks.given_up();
                let seqs = nacks.poll_nacks(now);
                self.metrics.uplink_nack_give_ups.increment(nacks.given_up() - given_up);
                if let Some(due) = nacks.poll_timeout() {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
                if seqs.is_empty() {
                    continue;
                }
                let Some(receiver) = receiver_of(&mut conn.pc, &published.mid) else { continue };
                let Some(mut receiver) = conn.pc.rtp_receiver(receiver) else { continue };
                let nack = TransportLayerNack {
                    sender_ssrc: 0,
                    media_ssrc: *ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&seqs),
                };
                if receiver.write_rtcp(now, vec![Box::new(nack)]).is_ok() {
                    self.metrics.uplink_nacks_sent.increment(seqs.len() as u64);
                    wrote = true;
                }
            }
        }
        conn.uplink_nack_at = next;
        if wrote {
            self.mark_dirty(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids_come_from_the_answer() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
            a=extmap:11/recvonly urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n";
        assert_eq!(RepairExtensionIds::from_sdp(sdp), Some(RepairExtensionIds { mid: 4, repaired_rid: 11 }));
        let without_rrid = "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
        assert_eq!(RepairExtensionIds::from_sdp(without_rrid), None);
    }

    #[test]
    fn a_track_follows_a_bounded_number_of_streams() {
        let t0 = Instant::now();
        let mut uplink = TrackUplink::default();
        for ssrc in 0..MAX_NACKED_STREAMS as u32 {
            assert_eq!(uplink.on_packet(ssrc, 1, t0), Some((Arrival::New, false)));
        }
        assert_eq!(uplink.on_packet(999, 1, t0), None);
        assert_eq!(uplink.on_packet(0, 3, t0), Some((Arrival::New, true)), "2 is missing on stream 0");
        assert_eq!(uplink.poll_timeout(), Some(t0));
        assert_eq!(uplink.on_packet(0, 2, t0), Some((Arrival::Repaired, false)));
        assert_eq!(uplink.poll_timeout(), None);
    }
}
