//! Repair across a link, receiving side (docs/cluster.md, "Repair across the link"): the
//! losses of a relay track are NACKed over the link by the track's shard, by the same
//! `UplinkNacks` as a publisher's (at once, then every 100 ms, at most 10 times within 1 s).
//! So one loss costs one NACK on the link however many subscribers this node has; each of them
//! gets the repair from the relay track's fan-out. The publisher's node answers from its
//! `RelayOut` history (`relay_out.rs`).

use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use std::time::Instant;

use super::ShardCore;
use crate::shard::published::Source;

impl ShardCore {
    /// NACKs what is due on every relay track of this shard, and files the next deadline.
    pub(super) fn on_relay_nack_timeout(&mut self, now: Instant) {
        if self.relay.nack_at.is_none_or(|at| at > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        for published in self.published.values_mut() {
            let (Source::Relay(relay), Some(uplink)) = (&published.source, published.uplink.as_mut()) else { continue };
            let Some(link) = self.relay.links.get_mut(&relay.link) else { continue };
            for (ssrc, nacks) in uplink.streams.iter_mut() {
                let seqs = nacks.poll_nacks(now);
                if let Some(due) = nacks.poll_timeout() {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
                // No packet opened yet, nowhere to ask: nothing can be missing either.
                let (false, Some(peer)) = (seqs.is_empty(), relay.peer) else { continue };
                let nack = TransportLayerNack {
                    sender_ssrc: self.relay.rtcp_ssrc,
                    media_ssrc: *ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&seqs),
                };
                match link.seal_rtcp(&[Box::new(nack)]) {
                    Ok(sealed) => {
                        link.stats.nacks.outbound.add(seqs.len() as u64);
                        self.batch.push(peer, sealed);
                    }
                    Err(reason) => link.stats.dropped(reason),
                }
            }
        }
        self.relay.nack_at = next;
    }
}
