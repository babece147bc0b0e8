//! Tracks that arrive over a link (docs/cluster.md, "A remote track is a publisher"): a relay
//! track is published on the shard that receives it, and its packets, once opened and placed by
//! SSRC, take the same way as a client's (uplink NACKs, then `hand_on`). Also where every
//! datagram that no client's address claims is tried as relay media.

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu_core::{Arrival, LayerOrder};
use std::net::SocketAddr;
use std::time::Instant;

use super::ShardCore;
use crate::relay::{LinkId, RelayTrack, RelayTrackSpec};
use crate::shard::published::{Published, Source};
use crate::shard::relay::inbound::RelayIn;
use crate::shard::relay::{Direction, InboundSsrc, RelayDrop, RelayRoute};
use crate::shard::uplink::TrackUplink;
use crate::{MediaError, TrackKey};

impl ShardCore {
    /// A track published on the peer of `link` is to be received here: it gets a key on this
    /// shard and one new SSRC per layer, which the peer is to send it with.
    pub(super) fn add_relay_track(&mut self, link: LinkId, spec: RelayTrackSpec) -> Result<RelayTrack, MediaError> {
        let key = TrackKey::new(self.index, self.next_track_serial);
        let ssrcs = self.relay.issue_ssrcs(link, key, spec.layers.len().max(1))?;
        self.next_track_serial += 1;
        let hints: Vec<(String, Option<(u16, u16)>)> = spec
            .layers
            .iter()
            .map(|l| {
                let dims = (l.width > 0 && l.height > 0).then_some((l.width as u16, l.height as u16));
                (l.rid.0.clone(), dims)
            })
            .collect();
        let source = Source::Relay(RelayIn::new(link, ssrcs.clone()));
        let mut published = Published::new(source, spec.kind, &spec.mime, LayerOrder::new(hints));
        published.layer_ssrcs = ssrcs.iter().enumerate().map(|(layer, ssrc)| (layer as u8, *ssrc)).collect();
        published.uplink = Some(TrackUplink::default());
        self.published.insert(key, published);
        tracing::info!(shard = self.index, link = link.0, track = %spec.track_id, publisher = %spec.publisher,
            ?key, ?ssrcs, "relay track added");
        Ok(RelayTrack { key, dest: self.announce, ssrcs })
    }

    /// The relay track `key` is no longer received (its subscriptions go as the control plane
    /// removes them, as when a client unpublishes).
    pub(super) fn remove_relay_track(&mut self, key: TrackKey) {
        if self.published.get(&key).is_some_and(|p| matches!(p.source, Source::Relay(_))) {
            self.forget_published(key);
        }
    }

    /// A datagram no client's address claims: relay media if its SSRC says so. Returns false
    /// when it is not the relay's either.
    pub(super) fn on_relay_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> bool {
        match self.relay.route(datagram, from) {
            RelayRoute::NotRelay => false,
            RelayRoute::Unknown(link) => {
                if let Some(link) = self.relay.links.get_mut(&link) {
                    link.stats.unknown_ssrcs.add(1);
                }
                true
            }
            RelayRoute::Media(entry) => {
                let Some(link) = self.relay.links.get_mut(&entry.link) else { return true };
                match link.open_rtp(datagram) {
                    Ok(packet) => self.on_relay_rtp(entry, packet, from, now),
                    Err(reason) => {
                        if reason == RelayDrop::Unopened {
                            link.stats.decrypt_failures.add(1);
                        }
                        link.stats.dropped(reason);
                    }
                }
                true
            }
            RelayRoute::Rtcp(links) => {
                let mut opened = None;
                let mut failure = RelayDrop::Unopened;
                for id in &links {
                    let Some(link) = self.relay.links.get_mut(id) else { continue };
                    match link.open_rtcp(datagram) {
                        Ok(packets) => {
                            opened = Some((*id, packets));
                            break;
                        }
                        Err(reason) => failure = reason,
                    }
                }
                match opened {
                    Some((link, packets)) => self.on_relay_rtcp(link, packets, now),
                    None => {
                        if let Some(link) = links.first().and_then(|id| self.relay.links.get_mut(id)) {
                            if failure == RelayDrop::Unopened {
                                link.stats.decrypt_failures.add(1);
                            }
                            link.stats.dropped(failure);
                        }
                    }
                }
                true
            }
        }
    }

    /// An opened RTP packet of a relay track: through the track's uplink NACKs, then on to its
    /// subscribers as if published here.
    fn on_relay_rtp(&mut self, entry: InboundSsrc, packet: rtc::rtp::Packet, from: SocketAddr, now: Instant) {
        let InboundSsrc { link, key, layer } = entry;
        let Some(published) = self.published.get_mut(&key) else { return };
        let Source::Relay(relay) = &mut published.source else { return };
        relay.peer = Some(from);
        let Some(state) = self.relay.links.get_mut(&link) else { return };
        let arrival = published
            .uplink
            .as_mut()
            .and_then(|uplink| uplink.on_packet(packet.header.ssrc, packet.header.sequence_number, now));
        match arrival {
            Some((Arrival::Duplicate, _)) | None => {
                state.stats.dropped(RelayDrop::Duplicate);
                return;
            }
            Some((Arrival::New, gaps)) => {
                state.stats.lost.add(gaps as u64);
                if gaps > 0 {
                    self.relay.nack_at = Some(self.relay.nack_at.map_or(now, |at| at.min(now)));
                }
            }
            Some((Arrival::Repaired, _)) => {}
        }
        let Some(state) = self.relay.links.get_mut(&link) else { return };
        state.stats.packet(Direction::In, layer, packet.payload.len());
        let Some(published) = self.published.get(&key) else { return };
        let keyframe = published.codec.is_keyframe(&packet.payload);
        self.hand_on(key, layer, packet, keyframe, now, now);
    }

    /// R asks the publisher's node for a keyframe of a relay track's layer (the track's throttle
    /// already let it through): one PLI over the link, to where the track's packets come from.
    pub(super) fn request_keyframe_over_link(
        &mut self,
        key: TrackKey,
        link: LinkId,
        layer: u8,
        ssrc: u32,
        _now: Instant,
    ) {
        let Some(Source::Relay(RelayIn { peer: Some(peer), .. })) = self.published.get(&key).map(|p| &p.source) else {
            // Nothing arrived yet: the first packets are on their way, and a keyframe with them.
            return;
        };
        let peer = *peer;
        let Some(state) = self.relay.links.get_mut(&link) else { return };
        let pli = PictureLossIndication { sender_ssrc: self.relay.rtcp_ssrc, media_ssrc: ssrc };
        match state.seal_rtcp(&[Box::new(pli)]) {
            Ok(sealed) => {
                tracing::debug!(track = ?key, layer, ssrc, "PLI over the link");
                state.stats.plis.outbound.add(1);
                self.batch.push(peer, sealed);
            }
            Err(reason) => state.stats.dropped(reason),
        }
    }
}
