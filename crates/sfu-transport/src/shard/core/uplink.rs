//! Publisher uplink repair, shard side: packets missing from a publisher's streams are NACKed
//! (sfu-core's [`UplinkNacks`](sfu_core::UplinkNacks) decides when), and RTX packets the stack
//! could not bind are unwrapped into the layer they repair.

use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use sfu_core::Arrival;
use std::time::Instant;

use super::ShardCore;
use crate::metrics::IngressLimit;
use crate::shard::conn::Role;
use crate::shard::published::{Source, receiver_of};
use crate::shard::uplink::MAX_REPAIR_STREAMS;
use crate::{ConnId, TrackKey};

impl ShardCore {
    /// An RTP packet the stack could not place (see `repair_tap`): unwrapped into its layer if
    /// it is RTX, otherwise dropped as the stack would have.
    pub(super) fn on_unbound_rtp(&mut self, id: ConnId, mut packet: rtc::rtp::Packet, arrived: Instant, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Publisher(publisher) = &mut conn.role else { return };
        let rtx_ssrc = packet.header.ssrc;
        let primary = match publisher.repair_ssrcs.get(&rtx_ssrc) {
            Some(primary) => *primary,
            None => {
                let Some(ids) = publisher.repair_ids else { return };
                let (Some(mid), Some(rid)) =
                    (packet.header.get_extension(ids.mid), packet.header.get_extension(ids.repaired_rid))
                else {
                    return;
                };
                let (Ok(mid), Ok(rid)) = (std::str::from_utf8(&mid), std::str::from_utf8(&rid)) else { return };
                let Some(published) = publisher.published_mids.get(mid).and_then(|key| self.published.get(key)) else {
                    return;
                };
                let Some(primary) =
                    published.layers.index_of(rid).and_then(|layer| published.layer_ssrcs.get(&layer)).copied()
                else {
                    // Its layer has sent nothing yet: nothing to repair.
                    return;
                };
                if publisher.repair_ssrcs.len() >= MAX_REPAIR_STREAMS {
                    self.metrics.limit_hit(IngressLimit::RepairStreams).increment(1);
                    return;
                }
                tracing::debug!(conn = id.0, mid, rid, rtx_ssrc, primary, "publisher RTX stream");
                publisher.repair_ssrcs.insert(rtx_ssrc, primary);
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
            Some((Arrival::New, gaps)) => gaps > 0,
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
        if gap && let Some(publisher) = self.conns.get_mut(&id).and_then(|c| c.role.publisher_mut()) {
            publisher.uplink_nack_at = Some(publisher.uplink_nack_at.map_or(now, |at| at.min(now)));
        }
        true
    }

    /// NACKs what is due on every track `id` publishes, and files the next deadline.
    pub(super) fn on_uplink_nack_timeout(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Publisher(publisher) = &mut conn.role else { return };
        if publisher.uplink_nack_at.is_none_or(|at| at > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        let mut wrote = false;
        for key in publisher.published_mids.values() {
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
                let Source::Conn { mid, .. } = &published.source else { continue };
                let Some(receiver) = receiver_of(&mut conn.pc, mid) else { continue };
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
        publisher.uplink_nack_at = next;
        if wrote {
            self.mark_dirty(id);
        }
    }
}
