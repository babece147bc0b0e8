//! Tracks published here that cross links (docs/cluster.md, "a remote node is one subscriber
//! per track"): each `RelayOut` lives in its track's `Published`, on the publisher's shard, so
//! a packet crosses with no hop between shards. Also the peer's RTCP about what crosses: NACKs
//! answered from the out's history, PLIs joined to the publisher's keyframe throttle.

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use sfu_core::LayerSet;
use sfu_proto::TrackKind;
use std::net::SocketAddr;
use std::time::Instant;

use super::ShardCore;
use crate::relay::LinkId;
use crate::shard::published::{DemandFrom, MediaPacket, Source};
use crate::shard::relay::Direction;
use crate::shard::relay::out::RelayOut;
use crate::{MediaError, TrackKey};

impl ShardCore {
    /// Track `key` (published by a client here) starts crossing `link`: layer `i` goes to `dest`
    /// as `ssrcs[i]`, each layer from its next keyframe (asked for at once).
    pub(super) fn add_relay_out(
        &mut self,
        key: TrackKey,
        link: LinkId,
        dest: SocketAddr,
        ssrcs: Vec<u32>,
        now: Instant,
    ) -> Result<(), MediaError> {
        // A relay track does not cross again: no node relays what it did not publish.
        let published = self.published.get_mut(&key).filter(|p| p.conn().is_some()).ok_or(MediaError::NoTrack)?;
        let state = self.relay.links.get_mut(&link).ok_or(MediaError::NoLink)?;
        if let Some(existing) = published.relay_outs.iter().find(|out| out.link == link) {
            return match existing.ssrcs().eq(ssrcs.iter().copied()) && existing.dest == dest {
                true => Ok(()),
                false => Err(MediaError::SsrcReused(ssrcs.first().copied().unwrap_or(0))),
            };
        }
        for (i, ssrc) in ssrcs.iter().enumerate() {
            if state.sent.contains(ssrc) || ssrcs[..i].contains(ssrc) {
                return Err(MediaError::SsrcReused(*ssrc));
            }
        }
        for (layer, ssrc) in ssrcs.iter().enumerate() {
            state.sent.insert(*ssrc);
            self.relay.outbound.insert((link, *ssrc), (key, layer as u8));
        }
        let gated = published.kind == TrackKind::Video;
        let mut out = RelayOut::new(link, dest, &ssrcs, gated);
        let joining = out.poll_keyframe_requests(now);
        published.relay_outs.push(out);
        // Until the far side says what it uses, every layer crosses and is encoded; and it is
        // told which layers flow at the next check.
        if let Some(top) = published.layers.len().checked_sub(1).and_then(|top| u8::try_from(top).ok()) {
            published.demand.insert(DemandFrom::Link(link), top);
        }
        published.layers_told = None;
        tracing::info!(shard = self.index, link = link.0, track = ?key, %dest, ?ssrcs, "relay out added");
        self.apply_demand(key, now);
        self.request_keyframes(key, joining, now);
        Ok(())
    }

    /// Track `key` stops crossing `link`, and the far side's demand goes from its dynacast.
    pub(super) fn remove_relay_out(&mut self, key: TrackKey, link: LinkId, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let Some(at) = published.relay_outs.iter().position(|out| out.link == link) else { return };
        let out = published.relay_outs.swap_remove(at);
        published.demand.remove(&DemandFrom::Link(link));
        for ssrc in out.ssrcs() {
            self.relay.outbound.remove(&(link, ssrc));
        }
        self.apply_demand(key, now);
    }

    /// Track `key` is gone (unpublished, its connection closed, its link closed): nothing of
    /// it stays in the relay tables either.
    pub(super) fn forget_published(&mut self, key: TrackKey) {
        let Some(published) = self.published.remove(&key) else { return };
        for out in &published.relay_outs {
            for ssrc in out.ssrcs() {
                self.relay.outbound.remove(&(out.link, ssrc));
            }
        }
        if let Source::Relay(relay) = &published.source {
            self.relay.forget_inbound(&relay.ssrcs);
        }
    }

    /// Every relay out of `link` on this shard goes (the link closed).
    pub(super) fn remove_relay_outs_of(&mut self, link: LinkId, now: Instant) {
        let crossing: Vec<TrackKey> = self
            .published
            .iter()
            .filter(|(_, p)| p.relay_outs.iter().any(|out| out.link == link))
            .map(|(key, _)| *key)
            .collect();
        for key in crossing {
            self.remove_relay_out(key, link, now);
        }
    }

    /// After a published packet's local fan-out: each link its track crosses gets its copy.
    pub(super) fn send_relay_outs(&mut self, media: &MediaPacket, now: Instant) {
        let Some(published) = self.published.get_mut(&media.key) else { return };
        let mut keyframes = LayerSet::EMPTY;
        for out in &mut published.relay_outs {
            let Some(link) = self.relay.links.get_mut(&out.link) else { continue };
            let sent = out
                .on_packet(&media.meta, &media.payload, now)
                .and_then(|packet| link.seal_rtp(&packet, out.dest, &mut self.batch));
            match sent {
                Ok(_) => link.stats.packet(Direction::Out, media.meta.layer, media.payload.len()),
                Err(reason) => link.stats.dropped(reason),
            }
            keyframes = keyframes.union(out.poll_keyframe_requests(now));
        }
        self.request_keyframes(media.key, keyframes, now);
    }

    pub(super) fn request_keyframes(&mut self, key: TrackKey, layers: LayerSet, now: Instant) {
        for layer in (0..sfu_core::MAX_LAYERS as u8).filter(|l| layers.contains(*l)) {
            self.request_keyframe(key, layer, now);
        }
    }

    /// RTCP from a peer shard on `link`, about what crosses it from here.
    pub(super) fn on_relay_rtcp(&mut self, link: LinkId, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) {
        for packet in packets {
            let any = packet.as_any();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                let seqs: Vec<u16> = nack.nacks.iter().flat_map(|pair| pair.packet_list()).collect();
                self.on_link_nack(link, nack.media_ssrc, &seqs, now);
            } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                self.on_link_keyframe_request(link, pli.media_ssrc, now);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                for entry in &fir.fir {
                    self.on_link_keyframe_request(link, entry.ssrc, now);
                }
            }
        }
    }

    /// The peer lost these packets of `ssrc`: the same packets again, from the out's history.
    fn on_link_nack(&mut self, link: LinkId, ssrc: u32, seqs: &[u16], now: Instant) {
        let Some(state) = self.relay.links.get_mut(&link) else { return };
        state.stats.nacks.inbound.add(seqs.len() as u64);
        let Some(&(key, _)) = self.relay.outbound.get(&(link, ssrc)) else { return };
        let Some(out) = self.published.get_mut(&key).and_then(|p| p.relay_outs.iter_mut().find(|o| o.link == link))
        else {
            return;
        };
        for &seq in seqs {
            let Some(packet) = out.resend(ssrc, seq, now) else { continue };
            match state.seal_rtp(&packet, out.dest, &mut self.batch) {
                Ok(_) => state.stats.retransmissions.add(1),
                Err(reason) => state.stats.dropped(reason),
            }
        }
    }

    /// The peer's subscribers want a keyframe of what it receives as `ssrc`: it joins the
    /// publisher's throttle like a local subscriber's request.
    fn on_link_keyframe_request(&mut self, link: LinkId, ssrc: u32, now: Instant) {
        let Some(state) = self.relay.links.get_mut(&link) else { return };
        state.stats.plis.inbound.add(1);
        if let Some(&(key, layer)) = self.relay.outbound.get(&(link, ssrc)) {
            self.request_keyframe(key, layer, now);
        }
    }
}
