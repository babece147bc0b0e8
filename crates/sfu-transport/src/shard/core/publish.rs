//! The publisher side of a shard: accepting offers, reading published media once, and handing
//! each packet to every shard that has subscribers for its track.

use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu_core::{LayerOrder, PacketMeta, VideoCodec};
use sfu_proto::{LayerInfo, ParticipantId, TrackDescription, TrackKind};
use std::sync::Arc;
use std::time::Instant;

use super::ShardCore;
use crate::api::{PublishedTrack, PublisherAnswer};
use crate::peer_factory::{DATA_MAX_MESSAGE_BYTES, Direction, with_max_message_size, with_start_bitrate};
use crate::shard::command::Command;
use crate::shard::conn::Role;
use crate::shard::published::{AudioLevelTap, MediaPacket, Published, Source, ordered_layers, receiver_of};
use crate::shard::uplink::{RepairExtensionIds, TrackUplink};
use crate::{ConnId, MediaError, TrackKey};

/// Initial send bitrate suggested to publishing browsers, kbit/s.
const PUBLISHER_START_KBPS: u32 = 2500;

impl ShardCore {
    pub(super) fn publisher_offer(
        &mut self,
        id: ConnId,
        owner: ParticipantId,
        sdp: String,
        descriptions: Vec<TrackDescription>,
        now: Instant,
    ) -> Result<PublisherAnswer, MediaError> {
        let rids = crate::shard::sdp_info::receive_rids(&sdp);
        let conn = self.ensure_conn(id, owner, Direction::Ingress, now)?;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| MediaError::Sdp(e.to_string()))?;
        conn.pc.set_remote_description(now, offer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let answer = conn.pc.create_answer(None).map_err(|e| MediaError::Sdp(e.to_string()))?;
        conn.pc.set_local_description(now, answer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let sdp = conn
            .pc
            .local_description()
            .map(|d| with_max_message_size(&with_start_bitrate(&d.sdp, PUBLISHER_START_KBPS), DATA_MAX_MESSAGE_BYTES))
            .ok_or_else(|| MediaError::Sdp("no local description".into()))?;

        self.learn_ufrag(id, &sdp);
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        let Role::Publisher(publisher) = &mut conn.role else { return Err(MediaError::NoConnection) };
        publisher.repair_ids = RepairExtensionIds::from_sdp(&sdp);
        // Collect every receiving media section: (mid, kind, codec mime, clock rate, receiver).
        let mut sections = Vec::new();
        let transceivers: Vec<_> = conn.pc.get_transceivers().collect();
        for t in transceivers {
            let Some(transceiver) = conn.pc.rtp_transceiver(t) else { continue };
            let Some(mid) = transceiver.mid().clone() else { continue };
            let direction = transceiver.direction();
            let Some(receiver_id) = transceiver.receiver() else { continue };
            let Some(mut receiver) = conn.pc.rtp_receiver(receiver_id) else { continue };
            let kind = receiver.track().kind();
            let parameters = &receiver.get_parameters().rtp_parameters;
            let codec = parameters.codecs.first().map(|c| c.rtp_codec.clone());
            let audio_level = parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == sfu_proto::rtp_extensions::AUDIO_LEVEL)
                .and_then(|e| u8::try_from(e.id).ok());
            let receiving = matches!(
                direction,
                rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly
                    | rtc::rtp_transceiver::RTCRtpTransceiverDirection::Sendrecv
            );
            sections.push((mid, kind, codec, receiving, audio_level));
        }

        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut live_mids = Vec::new();
        for (mid, kind, codec, receiving, audio_level) in sections {
            let Some(codec) = codec.filter(|_| receiving) else { continue };
            live_mids.push(mid.clone());
            if self.conns.get(&id).and_then(|c| c.role.publisher()).is_some_and(|p| p.published_mids.contains_key(&mid))
            {
                continue;
            }
            let description = descriptions.iter().find(|d| d.mid == mid);
            let hinted: Vec<LayerInfo> = description.map(|d| d.layers.clone()).unwrap_or_default();
            let rid_names: Vec<String> = if hinted.is_empty() {
                rids.get(&mid).cloned().unwrap_or_default()
            } else {
                hinted.iter().map(|l| l.rid.0.clone()).collect()
            };
            let hints: Vec<(String, Option<(u16, u16)>)> = rid_names
                .iter()
                .map(|rid| {
                    let dims = hinted.iter().find(|l| &l.rid.0 == rid).map(|l| (l.width as u16, l.height as u16));
                    (rid.clone(), dims.filter(|(w, h)| *w > 0 && *h > 0))
                })
                .collect();
            let layers = LayerOrder::new(hints);
            let ordered = ordered_layers(&layers);
            let dynacast = self.new_dynacast(layers.len(), now);
            let key = TrackKey::new(self.index, self.next_track_serial);
            self.next_track_serial += 1;
            let kind = if kind == RtpCodecKind::Audio { TrackKind::Audio } else { TrackKind::Video };
            let mut published =
                Published::new(Source::Conn { conn: id, mid: mid.clone() }, kind, &codec.mime_type, layers);
            published.dynacast = dynacast;
            published.audio_level = audio_level.filter(|_| kind == TrackKind::Audio).map(|extension_id| {
                AudioLevelTap { extension_id, meter: sfu_core::AudioLevelMeter::new(), audible: false }
            });
            published.uplink = (kind == TrackKind::Video).then(TrackUplink::default);
            self.published.insert(key, published);
            if let Some(publisher) = self.conns.get_mut(&id).and_then(|c| c.role.publisher_mut()) {
                publisher.published_mids.insert(mid.clone(), key);
            }
            added.push(PublishedTrack {
                mid,
                key,
                kind,
                mime: codec.mime_type.clone(),
                clock_rate: codec.clock_rate,
                layers: ordered,
            });
        }
        if let Some(publisher) = self.conns.get_mut(&id).and_then(|c| c.role.publisher_mut()) {
            let gone: Vec<String> =
                publisher.published_mids.keys().filter(|m| !live_mids.contains(m)).cloned().collect();
            for mid in gone {
                if let Some(key) = publisher.published_mids.remove(&mid) {
                    removed.push(key);
                }
            }
        }
        for key in &removed {
            self.forget_published(*key);
        }
        self.rearm_dynacast(id);
        Ok(PublisherAnswer { sdp, added, removed })
    }

    /// A published RTP packet: classify it once, then hand it to every subscribing shard.
    pub(super) fn on_published_rtp(
        &mut self,
        id: ConnId,
        rtc_track: &str,
        packet: rtc::rtp::Packet,
        arrived: Instant,
        now: Instant,
    ) {
        self.metrics.received_packets.increment(1);
        self.metrics.received_bytes.increment(packet.payload.len() as u64);
        let ssrc = packet.header.ssrc;
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Publisher(publisher) = &mut conn.role else { return };
        let (key, layer) = match publisher.ingress_ssrcs.get(&ssrc) {
            Some(found) => *found,
            None => {
                let Some(key) = publisher.ingress_tracks.get(rtc_track).copied() else { return };
                let Some(published) = self.published.get_mut(&key) else { return };
                let Source::Conn { mid, .. } = &published.source else { return };
                let rid = receiver_of(&mut conn.pc, mid)
                    .and_then(|r| conn.pc.rtp_receiver(r))
                    .and_then(|r| r.track().rid(ssrc).map(|s| s.to_string()));
                let layer = rid.as_deref().and_then(|r| published.layers.index_of(r)).unwrap_or(0);
                tracing::debug!(conn = id.0, track = ?key, ssrc, ?rid, layer, "publisher stream mapped to a layer");
                published.layer_ssrcs.insert(layer, ssrc);
                publisher.ingress_ssrcs.insert(ssrc, (key, layer));
                (key, layer)
            }
        };
        if !self.note_uplink_arrival(id, key, ssrc, packet.header.sequence_number, now) {
            return;
        }
        let Some(published) = self.published.get_mut(&key) else { return };
        if let Some(tap) = published.audio_level.as_mut()
            && let Some(level) = packet.header.get_extension(tap.extension_id)
            && let Some((_, dbov)) = sfu_core::parse_audio_level(&level)
        {
            tap.meter.on_packet(dbov);
        }
        let keyframe = published.codec.is_keyframe(&packet.payload);
        if keyframe && let Some((w, h)) = sfu_core::vp8_keyframe_size(&packet.payload) {
            let rid = published.layers.rid_at(layer).map(str::to_owned);
            if let Some(rid) = rid
                && published.layers.set_resolution(&rid, w, h)
            {
                // The order changed: layer numbers cached per SSRC are stale.
                tracing::debug!(track = ?key, rid, w, h, "layer order changed by a keyframe's size");
                published.layer_ssrcs.clear();
                if let Some(publisher) = self.conns.get_mut(&id).and_then(|c| c.role.publisher_mut()) {
                    publisher.ingress_ssrcs.clear();
                }
            }
        }
        self.hand_on(key, layer, packet, keyframe, arrived, now);
    }

    /// What every published packet goes through once its track and layer are known, whether a
    /// client published it here or it came over a link: the track's layer activity and
    /// deferred keyframe requests, then one `MediaPacket` for every shard with subscribers, and
    /// the links it crosses.
    pub(super) fn hand_on(
        &mut self,
        key: TrackKey,
        layer: u8,
        packet: rtc::rtp::Packet,
        keyframe: bool,
        arrived: Instant,
        now: Instant,
    ) {
        let Some(published) = self.published.get_mut(&key) else { return };
        // Padding says nothing about a layer being encoded (browsers pad on paused layers too).
        if !packet.payload.is_empty() {
            published.activity.on_packet(layer, now);
        }
        if let Some(i) = published.deferred_plis.iter().position(|l| published.throttle.is_allowed(*l, now)) {
            let layer = published.deferred_plis.swap_remove(i);
            self.request_keyframe(key, layer, now);
        }
        let Some(published) = self.published.get_mut(&key) else { return };
        let media = Arc::new(MediaPacket {
            key,
            meta: PacketMeta {
                layer,
                ssrc: packet.header.ssrc,
                seq: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                marker: packet.header.marker,
                keyframe,
                padding_only: packet.payload.is_empty(),
                vp8: (published.codec == VideoCodec::Vp8)
                    .then(|| sfu_core::parse_vp8_descriptor(&packet.payload))
                    .flatten(),
            },
            payload: packet.payload,
            arrived,
            mix_minus: Vec::new(),
        });
        self.distribute(media, now);
    }

    /// Hands a published packet to every shard with subscribers of its track (this one's
    /// own last) and to the links it crosses.
    pub(super) fn distribute(&mut self, media: Arc<MediaPacket>, now: Instant) {
        let key = media.key;
        let Some(published) = self.published.get(&key) else { return };
        // Other shards get the packet through their queues; this shard's own subscribers last,
        // once the borrow of `published` is over (no per-packet list of shards to allocate).
        let mut local = false;
        for &shard in published.downstream.keys() {
            if shard == self.index {
                local = true;
            } else {
                self.to_shards.push_back((shard, Command::Forward(media.clone())));
            }
        }
        if local {
            self.forward_local(&media, now);
        }
        if self.published.get(&key).is_some_and(|p| !p.relay_outs.is_empty()) {
            self.send_relay_outs(&media, now);
        }
    }

    /// A subscription on `shard` starts or ends for a track published here.
    pub(super) fn set_downstream(&mut self, key: TrackKey, shard: usize, attach: bool, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let count = published.downstream.entry(shard).or_insert(0);
        if attach {
            *count += 1;
            // A shard new to the track cannot tell a layer the publisher does not send from one
            // it has not seen yet, and would wait for it: say which ones flow.
            let layers = published.activity.recently_seen(now);
            if !layers.is_empty() {
                self.send_to_shard(shard, Command::LayersFlowing { key, layers }, now);
            }
            // A relayed track: which layers exist, though not all of them cross.
            if let Some(layers) = self.relay_layers_for_attach(key) {
                self.send_to_shard(shard, Command::AvailableLayers { key, layers }, now);
            }
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                published.downstream.remove(&shard);
            }
        }
    }

    /// Sends a PLI to the publisher for `layer`, at most once per layer per throttle window.
    pub(super) fn request_keyframe(&mut self, key: TrackKey, layer: u8, now: Instant) {
        let Some(published) = self.published.get_mut(&key) else { return };
        let Some(ssrc) = published.layer_ssrcs.get(&layer).copied() else { return };
        if !published.throttle.should_send(layer, now) {
            self.metrics.keyframe_requests_throttled.increment(1);
            if !published.deferred_plis.contains(&layer) {
                published.deferred_plis.push(layer);
            }
            return;
        }
        let (conn_id, mid) = match &published.source {
            Source::Conn { conn, mid } => (*conn, mid.clone()),
            Source::Relay(relay) => {
                let link = relay.link;
                self.request_keyframe_over_link(key, link, layer, ssrc, now);
                return;
            }
            // Audio: there are no keyframes to ask for.
            Source::Mixer => return,
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        let Some(receiver) = receiver_of(&mut conn.pc, &mid) else { return };
        let Some(mut receiver) = conn.pc.rtp_receiver(receiver) else { return };
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
        if receiver.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
            tracing::debug!(track = ?key, layer, ssrc, "PLI to the publisher");
            self.metrics.plis_sent.increment(1);
        }
        self.mark_dirty(conn_id);
    }
}
