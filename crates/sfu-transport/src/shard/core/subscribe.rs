//! The subscriber side of a shard: a down track per subscribed track, forwarding decisions from
//! sfu-core applied to each packet, and the subscriber's RTCP (PLI, FIR, NACK) answered.

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use sfu_core::{Decision, Forwarder, ResendLog, RtpHistory, VideoCodec};
use sfu_proto::{ParticipantId, SubscriptionSettings, TrackKind};
use std::time::Instant;

use super::ShardCore;
use crate::api::{DownTrackSpec, SubscriberOffer};
use crate::metrics::FanoutTally;
use crate::peer_factory::Direction;
use crate::shard::command::Command;
use crate::shard::conn::Role;
use crate::shard::down_track::{DownTrack, RtxStream, SentPacket};
use crate::shard::egress::{Fanout, Subscription, history_capacity, send_rtp};
use crate::shard::published::MediaPacket;
use crate::{ConnId, MediaError, TrackKey};

impl ShardCore {
    pub(super) fn add_down_track(
        &mut self,
        id: ConnId,
        owner: ParticipantId,
        spec: DownTrackSpec,
        now: Instant,
    ) -> Result<(), MediaError> {
        let shed_levels = self.overload.level();
        let conn = self.ensure_conn(id, owner.clone(), Direction::Egress, now)?;
        let Role::Subscriber(subscriber) = &mut conn.role else { return Err(MediaError::NoConnection) };
        if subscriber.subscribed.contains(&spec.key) {
            return Ok(());
        }
        let ssrc = rand::random::<u32>();
        let kind = if spec.kind == TrackKind::Audio { RtpCodecKind::Audio } else { RtpCodecKind::Video };
        // An RTX stream for video, kept only if the subscriber accepts it (see
        // resolve_payload_types): the carrier of probes and retransmissions.
        let rtx = (kind == RtpCodecKind::Video && subscriber.bwe.is_some())
            .then(|| RTCRtpRtxParameters { ssrc: rand::random::<u32>() });
        let track = MediaStreamTrack::new(
            spec.publisher.to_string(),
            spec.track_id.to_string(),
            spec.track_id.to_string(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), rtx, ..Default::default() },
                codec: RTCRtpCodec { mime_type: spec.mime.clone(), clock_rate: spec.clock_rate, ..Default::default() },
                active: true,
                ..Default::default()
            }],
        );
        let sender = conn.pc.add_track(track)?;
        let mut forwarder = Forwarder::new(spec.kind, VideoCodec::from_mime(&spec.mime), spec.clock_rate);
        let dims: Vec<Option<(u16, u16)>> =
            spec.layers.iter().map(|l| (l.width > 0).then_some((l.width as u16, l.height as u16))).collect();
        forwarder.set_layers(&dims);
        forwarder.set_shed_levels(shed_levels);
        forwarder.set_preference(&spec.settings);
        // Which layers flow comes from the publisher's shard, in answer to the attach below
        // (`LayersFlowing`, see on_layers_flowing).
        forwarder.set_muted(spec.muted);
        forwarder.set_among_loudest(spec.among_loudest);
        let connected = conn.connected;
        if connected {
            forwarder.on_connected(now);
        }
        let capacity = history_capacity(spec.kind);
        if let Some(bwe) = subscriber.bwe.as_mut() {
            bwe.allocation_due = true;
        }
        subscriber.subscribed.push(spec.key);
        let down = DownTrack {
            sender,
            ssrc,
            mime: spec.mime,
            payload_type: None,
            history: RtpHistory::new(capacity),
            resends: ResendLog::default(),
            last_seq: None,
            last_sent_at: None,
            clock_rate: spec.clock_rate,
            clock_anchor: None,
            sent_packets: 0,
            sent_octets: 0,
            rtx: None,
            source: spec.source,
            rendered_area: rendered_area(&spec.settings),
            publisher: spec.publisher.clone(),
            listener: owner,
            allocation: None,
        };
        let fanout = self.fanouts.entry(spec.key).or_insert_with(|| Fanout::new(spec.kind));
        fanout.add(Subscription { conn: id, connected, forwarder, down });
        self.send_to_shard(
            spec.key.shard(),
            Command::Downstream { key: spec.key, shard: self.index, attach: true },
            now,
        );
        self.refresh_layer_demand(spec.key, now);
        Ok(())
    }

    pub(super) fn remove_down_track(&mut self, id: ConnId, key: TrackKey, now: Instant) -> Result<(), MediaError> {
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        let Role::Subscriber(subscriber) = &mut conn.role else { return Err(MediaError::NoConnection) };
        let at = subscriber.subscribed.iter().position(|k| *k == key).ok_or(MediaError::NoTrack)?;
        subscriber.subscribed.swap_remove(at);
        if let Some(bwe) = subscriber.bwe.as_mut() {
            bwe.allocation_due = true;
        }
        let removed = self.unlink_subscriber(id, key, now);
        if let (Some(conn), Some(subscription)) = (self.conns.get_mut(&id), removed) {
            conn.pc.remove_track(subscription.down.sender)?;
        }
        Ok(())
    }

    /// Takes `id`'s subscription out of the track's fan-out, and tells the publisher's shard.
    pub(super) fn unlink_subscriber(&mut self, id: ConnId, key: TrackKey, now: Instant) -> Option<Subscription> {
        let mut removed = None;
        if let Some(fanout) = self.fanouts.get_mut(&key) {
            removed = fanout.remove(id);
            if fanout.is_empty() {
                self.fanouts.remove(&key);
            }
        }
        self.send_to_shard(key.shard(), Command::Downstream { key, shard: self.index, attach: false }, now);
        self.refresh_layer_demand(key, now);
        removed
    }

    pub(super) fn subscriber_offer(
        &mut self,
        id: ConnId,
        ice_restart: bool,
        now: Instant,
    ) -> Result<SubscriberOffer, MediaError> {
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        if ice_restart {
            conn.pc.restart_ice();
        }
        let offer = conn.pc.create_offer(None)?;
        conn.pc.set_local_description(now, offer)?;
        let sdp = conn.pc.local_description().map(|d| d.sdp).unwrap_or_default();
        self.learn_ufrag(id, &sdp);
        let Some(conn) = self.conns.get_mut(&id) else { return Err(MediaError::NoConnection) };
        let Role::Subscriber(subscriber) = &mut conn.role else { return Err(MediaError::NoConnection) };
        let mut tracks = Vec::new();
        let transceivers: Vec<_> = conn.pc.get_transceivers().collect();
        for t in transceivers {
            let Some(transceiver) = conn.pc.rtp_transceiver(t) else { continue };
            let (Some(mid), Some(sender)) = (transceiver.mid().clone(), transceiver.sender()) else { continue };
            let sent_by = |key: &&TrackKey| {
                self.fanouts.get(key).and_then(|f| f.get(id)).is_some_and(|s| s.down.sender == sender)
            };
            if let Some(key) = subscriber.subscribed.iter().find(sent_by) {
                tracks.push((mid, *key));
            }
        }
        self.mark_dirty(id);
        Ok(SubscriberOffer { sdp, tracks })
    }

    pub(super) fn subscriber_answer(&mut self, id: ConnId, sdp: String, now: Instant) -> Result<(), MediaError> {
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| MediaError::Sdp(e.to_string()))?;
        conn.pc.set_remote_description(now, answer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        self.resolve_payload_types(id);
        self.mark_dirty(id);
        Ok(())
    }

    /// WHEP: the client offers recvonly sections; each gets one of `tracks`.
    pub(super) fn egress_offer(
        &mut self,
        id: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
        now: Instant,
    ) -> Result<String, MediaError> {
        let conn = self.ensure_conn(id, owner.clone(), Direction::Egress, now)?;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| MediaError::Sdp(e.to_string()))?;
        conn.pc.set_remote_description(now, offer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        for spec in tracks {
            self.add_down_track(id, owner.clone(), spec, now)?;
        }
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        let answer = conn.pc.create_answer(None).map_err(|e| MediaError::Sdp(e.to_string()))?;
        conn.pc.set_local_description(now, answer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let sdp = conn.pc.local_description().map(|d| d.sdp).unwrap_or_default();
        self.learn_ufrag(id, &sdp);
        self.resolve_payload_types(id);
        self.mark_dirty(id);
        Ok(sdp)
    }

    /// After negotiation, learns which payload type the subscriber uses for each codec.
    fn resolve_payload_types(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        for key in &subscriber.subscribed {
            let Some(down) = self.fanouts.get_mut(key).and_then(|f| f.get_mut(id)).map(|s| &mut s.down) else {
                continue;
            };
            let Some(mut sender) = conn.pc.rtp_sender(down.sender) else { continue };
            let parameters = sender.get_parameters();
            if let Some(bwe) = subscriber.bwe.as_mut()
                && let Some(ext) = parameters
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .find(|e| e.uri == sfu_proto::rtp_extensions::TRANSPORT_CC)
            {
                bwe.extension_id = Some(ext.id as u8);
            }
            let codecs = &parameters.rtp_parameters.codecs;
            down.payload_type =
                codecs.iter().find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&down.mime)).map(|c| c.payload_type);
            // RTX survives negotiation only if the subscriber answered with it for our codec.
            let apt = down.payload_type.map(|pt| format!("apt={pt}"));
            let rtx_payload_type = codecs
                .iter()
                .find(|c| {
                    c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX)
                        && apt
                            .as_deref()
                            .is_some_and(|apt| c.rtp_codec.sdp_fmtp_line.split(';').any(|p| p.trim() == apt))
                })
                .map(|c| c.payload_type);
            let rtx_ssrc =
                parameters.encodings.first().and_then(|e| e.rtp_coding_parameters.rtx.as_ref()).map(|r| r.ssrc);
            down.rtx = match (rtx_ssrc, rtx_payload_type, down.rtx.take()) {
                (Some(ssrc), Some(payload_type), Some(kept)) if kept.ssrc == ssrc => {
                    Some(RtxStream { payload_type, ..kept })
                }
                (Some(ssrc), Some(payload_type), _) => Some(RtxStream { ssrc, payload_type, next_seq: rand::random() }),
                _ => None,
            };
        }
    }

    /// The publisher's shard says which layers flow: subscriptions that have not started yet
    /// target one of those at once, instead of waiting a second and a half for a layer the
    /// publisher does not send (when this shard had not seen the track before).
    pub(super) fn on_layers_flowing(&mut self, key: TrackKey, layers: &[u8], now: Instant) {
        let Some(fanout) = self.fanouts.get_mut(&key) else { return };
        for subscription in fanout.subscriptions_mut() {
            if subscription.forwarder.current_layer().is_none() {
                subscription.forwarder.seed_active_layers(layers, now);
            }
        }
    }

    pub(super) fn set_subscription(
        &mut self,
        id: ConnId,
        key: TrackKey,
        settings: &SubscriptionSettings,
        now: Instant,
    ) {
        let Some(subscription) = self.fanouts.get_mut(&key).and_then(|f| f.get_mut(id)) else { return };
        subscription.forwarder.set_preference(settings);
        subscription.down.rendered_area = rendered_area(settings);
        if let Some(bwe) = self.conns.get_mut(&id).and_then(|c| c.role.subscriber_mut()).and_then(|s| s.bwe.as_mut()) {
            bwe.allocator.on_request(key.0);
        }
        self.reallocate(id, now);
        self.refresh_layer_demand(key, now);
    }

    pub(super) fn set_muted(&mut self, key: TrackKey, muted: bool) {
        let Some(fanout) = self.fanouts.get_mut(&key) else { return };
        for subscription in fanout.subscriptions_mut() {
            subscription.forwarder.set_muted(muted);
        }
    }

    /// Top-N audio: forwards the audio track `key` to this shard's subscribers again, or holds
    /// it back.
    pub(super) fn set_among_loudest(&mut self, key: TrackKey, among: bool) {
        let Some(fanout) = self.fanouts.get_mut(&key) else { return };
        for subscription in fanout.subscriptions_mut() {
            subscription.forwarder.set_among_loudest(among);
        }
    }

    /// Runs one published packet through the forwarder of every local subscriber of its track.
    pub(super) fn forward_local(&mut self, packet: &MediaPacket, now: Instant) {
        if !self.mix_inputs.is_empty() {
            self.feed_mix(packet, now);
        }
        let Some(fanout) = self.fanouts.get_mut(&packet.key) else { return };
        // Padding says nothing about a layer being encoded (see Forwarder::on_packet).
        if !packet.meta.padding_only {
            fanout.layer_rates.on_packet(packet.meta.layer, packet.payload.len(), now);
        }
        let source = fanout.payloads.push(packet.payload.clone());
        // Lent out of the map for the fan-out (one lookup per packet, not per copy); nothing
        // in the loop changes who subscribes.
        let mut subscriptions = fanout.take();
        let mut forwarded = false;
        let mut tally = FanoutTally::default();
        let mut keyframes_wanted = sfu_core::LayerSet::EMPTY;
        let mut switched = false;
        for subscription in subscriptions.iter_mut() {
            if !subscription.connected {
                tally.dropped(sfu_core::DropReason::NotConnected);
                continue;
            }
            let forwarder = &mut subscription.forwarder;
            let decision = forwarder.on_packet(&packet.meta, now);
            // Sent after the loop, one per layer: the publisher's shard throttles them per
            // layer anyway.
            if let Some(layer) = forwarder.poll_keyframe_request(now) {
                keyframes_wanted = keyframes_wanted.with(layer);
            }
            let t = match decision {
                Decision::Drop(reason) => {
                    tally.dropped(reason);
                    continue;
                }
                Decision::Forward(t) => t,
            };
            let id = subscription.conn;
            if let Some(layer) = t.switched_layer {
                tracing::debug!(conn = id.0, track = ?packet.key, layer, "forwarding starts on a layer");
                switched = true;
            }
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            let Role::Subscriber(subscriber) = &mut conn.role else { continue };
            let down = &mut subscription.down;
            let Some(payload_type) = down.payload_type else {
                tally.dropped(sfu_core::DropReason::PayloadTypeNotNegotiated);
                continue;
            };
            let payload = packet.payload_for(Some(&down.listener));
            let sent = SentPacket { timestamp: t.timestamp, marker: t.marker, source, vp8: t.vp8 };
            let out = &mut self.outgoing;
            sent.write_to(out, payload, t.seq, down.ssrc, payload_type);
            down.history.insert(t.seq, sent);
            let in_order = down.last_seq.is_none_or(|last| t.seq.wrapping_sub(last).wrapping_sub(1) < 0x8000);
            if in_order && down.clock_anchor.is_none_or(|(ts, _)| ts != t.timestamp) {
                down.clock_anchor = Some((t.timestamp, now));
            }
            down.last_seq = Some(t.seq);
            down.last_sent_at = Some(now);
            if let Some(bwe) = subscriber.bwe.as_mut() {
                if subscription.forwarder.kind() == TrackKind::Video && bwe.allocate_from.is_none() {
                    bwe.on_video_started(now);
                    // Its settling timer is new: the connection's deadline changes.
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(id);
                    }
                }
                bwe.stamp(out, now, false);
            }
            match send_rtp(subscriber.outbound.as_mut(), out, t.vp8.as_ref(), &mut self.batch) {
                Ok(_) => {
                    forwarded = true;
                    if self.queued_copies.last() != Some(&packet.arrived) {
                        self.queued_copies.push(packet.arrived);
                    }
                    down.sent_packets = down.sent_packets.wrapping_add(1);
                    down.sent_octets = down.sent_octets.wrapping_add(payload.len() as u32);
                    tally.forwarded(payload.len());
                }
                Err(reason) => tally.dropped(reason),
            }
        }
        if let Some(fanout) = self.fanouts.get_mut(&packet.key) {
            fanout.put_back(subscriptions);
        }
        self.metrics.add_fanout(&tally);
        for layer in (0..sfu_core::MAX_LAYERS as u8).filter(|&l| keyframes_wanted.contains(l)) {
            self.send_to_shard(packet.key.shard(), Command::KeyframeRequest { key: packet.key, layer }, now);
        }
        // A switch, or a new target (a keyframe is wanted for it), may change the layers used
        // here; a wish for a layer already in use changes nothing.
        let used = self.layer_demand.get(&packet.key).map_or(sfu_core::LayerSet::EMPTY, |d| d.used);
        if switched || used.union(keyframes_wanted) != used {
            self.refresh_layer_demand(packet.key, now);
        }
        if forwarded {
            self.forwarded_arrivals.push(packet.arrived);
        }
    }
}

/// The pixels a subscriber renders a track at, from its viewport hint (0 = unknown).
fn rendered_area(settings: &SubscriptionSettings) -> u32 {
    match (settings.max_width, settings.max_height) {
        (Some(w), Some(h)) => w.saturating_mul(h),
        _ => 0,
    }
}
