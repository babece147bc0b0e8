//! Applying a subscriber's bandwidth estimate: sfu-core's allocator shares it among the
//! connection's tracks, each decision caps (or pauses) that track's forwarder, and probe bursts
//! of RTX copies test for headroom before an up-switch.

use bytes::Bytes;
use sfu_bwe::{Bitrate, ProbePacer};
use sfu_core::{AllocationDecision, PacketRing, PauseReason, TrackDemand};
use sfu_proto::TrackKind;
use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;
use rtc::shared::marshal::MarshalSize;

use super::ShardCore;
use crate::api::MediaEvent;
use crate::ids::IdMap;
use crate::shard::conn::Role;
use crate::shard::down_track::{DownTrack, RtxStream};
use crate::shard::egress::{EgressBwe, Fanout, Subscription};
use crate::{ConnId, TrackKey};

/// How far back from the newest packet a probe burst looks for packets to copy.
const PROBE_LOOKBACK: u16 = 64;

impl ShardCore {
    /// Time-driven bandwidth work of a subscriber connection: the estimator's timers, probe
    /// packets that are due, and an allocation that is due.
    pub(in crate::shard) fn on_bandwidth_timeout(&mut self, id: ConnId, now: Instant) {
        let Some(bwe) = self.conns.get_mut(&id).and_then(|c| c.role.subscriber_mut()).and_then(|s| s.bwe.as_mut())
        else {
            return;
        };
        bwe.handle_timeout(now);
        let due =
            bwe.is_allocating(now) && (bwe.allocation_due || bwe.allocator.poll_timeout().is_some_and(|at| at <= now));
        if due {
            self.reallocate(id, now);
        }
        self.send_due_probes(id, now);
    }

    /// Shares the connection's estimate among its tracks and applies the decisions that
    /// changed.
    pub(in crate::shard) fn reallocate(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        let Some(bwe) = subscriber.bwe.as_mut() else { return };
        if !bwe.is_allocating(now) {
            bwe.allocation_due = true;
            return;
        }
        bwe.allocation_due = false;
        let demands: Vec<TrackDemand> = subscriber
            .subscribed
            .iter()
            .filter_map(|key| {
                let fanout = self.fanouts.get(key)?;
                let subscription = fanout.get(id)?;
                let rates = fanout.layer_rates.bitrates(now);
                let speaking = self.speaking.contains(&subscription.down.publisher);
                Some(demand(*key, subscription, rates, speaking))
            })
            .collect();
        let estimate = bwe.estimator.estimate().as_u64();
        let allocations = bwe.allocator.allocate(estimate, &demands, now);
        bwe.estimator.set_desired_bitrate(Some(Bitrate::bps(allocations.desired_bps)), now);
        if let Some(blocked) = allocations.blocked_up_switch
            && bwe.pacer.is_none()
        {
            bwe.estimator.request_probe(Bitrate::bps(blocked.needed_bps), now);
        }
        let mut events = Vec::new();
        let mut changed = Vec::new();
        for key in &subscriber.subscribed {
            let Some(decision) = allocations.decision(key.0) else { continue };
            let Some(subscription) = self.fanouts.get_mut(key).and_then(|f| f.get_mut(id)) else { continue };
            let previous = subscription.down.allocation.replace(decision);
            if previous == Some(decision) {
                continue;
            }
            subscription.forwarder.set_bandwidth_allocation(decision);
            changed.push(*key);
            tracing::debug!(conn = id.0, track = ?key, ?previous, ?decision, estimate,
                rates = ?demands.iter().find(|d| d.id == key.0).map(|d| (&d.layer_bitrates, d.audio_bitrate)), "allocation");
            if is_up(previous, decision) {
                self.metrics.allocation_up.increment(1);
            } else if previous.is_some() {
                self.metrics.allocation_down.increment(1);
            }
            const BANDWIDTH: AllocationDecision = AllocationDecision::Paused(PauseReason::Bandwidth);
            let (was_paused, is_paused) = (previous == Some(BANDWIDTH), decision == BANDWIDTH);
            if was_paused != is_paused {
                if is_paused {
                    self.metrics.paused(PauseReason::Bandwidth);
                }
                events.push(MediaEvent::StreamState {
                    conn: id,
                    key: *key,
                    paused: is_paused.then_some(PauseReason::Bandwidth),
                });
            }
        }
        for event in events {
            self.emit(event);
        }
        // The layers used may have changed (a relayed track's publisher node wants to know).
        for key in changed {
            self.refresh_layer_demand(key, now);
        }
        self.rearm_if_sooner(id);
    }

    /// Sends the probe packets due now: RTX copies of the newest packets of the connection's
    /// video, so the path carries the cluster's rate without the browser seeing anything new.
    fn send_due_probes(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        let Some(bwe) = subscriber.bwe.as_mut() else { return };
        if !conn.connected {
            return;
        }
        loop {
            if bwe.pacer.is_none() {
                let Some(cluster) = bwe.estimator.poll_probe(now) else { break };
                tracing::debug!(conn = id.0, target = %cluster.target, "probe burst");
                self.metrics.probe_clusters.increment(1);
                bwe.pacer = Some(ProbePacer::new(cluster, now));
            }
            let Some(pacer) = bwe.pacer.as_mut() else { break };
            if pacer.is_done() || pacer.has_expired(now) {
                bwe.pacer = None;
                continue;
            }
            if !pacer.is_due(now) {
                break;
            }
            let sent = match probe_track(&subscriber.subscribed, &self.fanouts, id) {
                Some(key) => {
                    let copied = probe_source(key, &mut self.fanouts, id, bwe.probe_cursor)
                        .and_then(|(down, payloads, seq)| send_rtx(&mut conn.pc, down, payloads, bwe, seq, now, true));
                    copied.or_else(|| {
                        let down = &mut self.fanouts.get_mut(&key)?.get_mut(id)?.down;
                        send_padding(&mut conn.pc, down, bwe, now)
                    })
                }
                None => None,
            };
            bwe.probe_cursor = bwe.probe_cursor.wrapping_add(1) % PROBE_LOOKBACK;
            let Some(pacer) = bwe.pacer.as_mut() else { break };
            match sent {
                Some(size) => {
                    self.metrics.probe_packets.increment(1);
                    pacer.on_probe_sent(size, now);
                }
                None => pacer.on_nothing_to_send(now),
            }
        }
        self.mark_dirty(id);
    }
}

/// What one down track asks of the allocator.
fn demand(
    key: TrackKey,
    subscription: &Subscription,
    mut rates: Vec<Option<u64>>,
    active_speaker: bool,
) -> TrackDemand {
    let (forwarder, down) = (&subscription.forwarder, &subscription.down);
    let kind = forwarder.kind();
    // Layers that have not flowed through this shard yet (the publisher may have paused them
    // for dynacast) still exist: priced at their defaults, they can be allocated.
    if rates.len() < forwarder.layer_count() {
        rates.resize(forwarder.layer_count(), None);
    }
    TrackDemand {
        id: key.0,
        kind,
        source: down.source,
        active_speaker,
        rendered_area: down.rendered_area,
        max_layer: forwarder.preferred_layer(),
        audio_bitrate: if kind == TrackKind::Audio { rates.first().copied().flatten() } else { None },
        layer_bitrates: if kind == TrackKind::Video { rates } else { Vec::new() },
    }
}

fn is_up(previous: Option<AllocationDecision>, next: AllocationDecision) -> bool {
    match (previous, next) {
        (Some(AllocationDecision::Layer(a)), AllocationDecision::Layer(b)) => b > a,
        (Some(AllocationDecision::Paused(_)), AllocationDecision::Layer(_) | AllocationDecision::Audio) => true,
        _ => false,
    }
}

/// The track whose RTX stream carries probes: the video track (with RTX) sent most recently.
fn probe_track(subscribed: &[TrackKey], fanouts: &IdMap<TrackKey, Fanout>, conn: ConnId) -> Option<TrackKey> {
    subscribed
        .iter()
        .filter_map(|key| Some((key, &fanouts.get(key)?.get(conn)?.down)))
        .filter(|(_, d)| d.rtx.is_some() && d.last_seq.is_some())
        .max_by_key(|(_, d)| d.last_sent_at)
        .map(|(key, _)| *key)
}

/// A packet of track `key` to copy for a probe: `cursor` steps back from the newest packet
/// sent, or the newest itself when the history is not that deep yet. None once their payloads
/// have left the fan-out's ring (the track has been paused for a while).
fn probe_source(
    key: TrackKey,
    fanouts: &mut IdMap<TrackKey, Fanout>,
    conn: ConnId,
    cursor: u16,
) -> Option<(&mut DownTrack, &PacketRing<Bytes>, u16)> {
    let (subscription, payloads) = fanouts.get_mut(&key)?.with_payloads_mut(conn)?;
    let down = &mut subscription.down;
    let newest = down.last_seq?;
    let seq = [newest.wrapping_sub(cursor), newest]
        .into_iter()
        .find(|&seq| down.history.get(seq).is_some_and(|sent| payloads.get(sent.source).is_some()))?;
    Some((down, payloads, seq))
}

/// Padding bytes a padding-only probe packet carries.
pub(super) const PROBE_PADDING: usize = 240;

/// Zero bytes: RFC 8285 padding inside a header extension block.
static ZEROS: [u8; 1] = [0];

/// A padding-only packet of `rtx`'s stream, [`PROBE_PADDING`] bytes of padding, next in its
/// numbering.
fn padding_packet(rtx: &RtxStream, timestamp: u32) -> rtc::rtp::Packet {
    let filler = rtc::rtp::header::Extension { id: 0, payload: Bytes::from_static(&ZEROS) };
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            padding: true,
            payload_type: rtx.payload_type,
            sequence_number: rtx.next_seq,
            timestamp,
            ssrc: rtx.ssrc,
            extension: true,
            extension_profile: 0xBEDE,
            extensions: vec![filler; PROBE_PADDING / 2],
            ..Default::default()
        },
        payload: Bytes::new(),
    }
}

/// Sends a padding-only packet on `down`'s RTX stream, for a probe with no packet left to copy;
/// returns its size. The receiver counts it in its transport-cc feedback and drops it: it has
/// the padding bit set and no payload, so no original sequence number to recover (RFC 4588).
///
/// The stack marshals RTP padding of at most 4 bytes, so the bulk of the size is zero bytes in
/// the header extension block, which RFC 8285 defines as padding between elements (each
/// id-0 element of one zero byte marshals as two of them).
pub(super) fn send_padding(
    pc: &mut RTCPeerConnection,
    down: &mut DownTrack,
    bwe: &mut EgressBwe,
    now: Instant,
) -> Option<usize> {
    let timestamp = down.last_seq.and_then(|seq| down.history.get(seq)).map_or(0, |sent| sent.timestamp);
    let rtx = down.rtx.as_mut()?;
    let mut packet = padding_packet(rtx, timestamp);
    rtx.next_seq = rtx.next_seq.wrapping_add(1);
    bwe.stamp(&mut packet, now, true);
    let size = packet.marshal_size();
    let message = TaggedRTCMessage { now, message: RTCMessage::RtpPacket(Default::default(), packet) };
    pc.handle_write(message).ok().map(|()| size)
}

/// Sends the packet `seq` of `down`'s history again as RTX; returns its size, or None when
/// there is no such packet, no RTX stream, or the stack refused it.
pub(super) fn send_rtx(
    pc: &mut RTCPeerConnection,
    down: &mut DownTrack,
    payloads: &PacketRing<Bytes>,
    bwe: &mut EgressBwe,
    seq: u16,
    now: Instant,
    probe: bool,
) -> Option<usize> {
    let sent = *down.history.get(seq)?;
    let original = payloads.get(sent.source)?;
    let rtx = down.rtx.as_mut()?;
    let mut payload = bytes::BytesMut::with_capacity(2 + original.len());
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(original);
    if let Some(vp8) = &sent.vp8 {
        vp8.apply(&mut payload[2..]);
    }
    let mut packet = rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: sent.marker,
            payload_type: rtx.payload_type,
            sequence_number: rtx.next_seq,
            timestamp: sent.timestamp,
            ssrc: rtx.ssrc,
            ..Default::default()
        },
        payload: payload.freeze(),
    };
    rtx.next_seq = rtx.next_seq.wrapping_add(1);
    let size = packet.payload.len();
    bwe.stamp(&mut packet, now, probe);
    // RTX goes through the stack (its own SSRC, protected by the stack's context only): with
    // the shard's own path, NACK repair of keyframes behind a congested link failed more often
    // (docs/performance.md). The stack still runs its interceptors and SRTP on the packet.
    let message = TaggedRTCMessage { now, message: RTCMessage::RtpPacket(Default::default(), packet) };
    pc.handle_write(message).ok().map(|()| size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    /// What a receiver parses out of a padding probe: the RTX stream's header, the transport-cc
    /// extension after the zero padding of the extension block, the padding bit and no payload
    /// (so no original sequence number: a receiver drops it after counting it).
    #[test]
    fn a_padding_probe_parses_as_padding_only_rtx_with_its_transport_sequence_number() {
        let now = Instant::now();
        let mut bwe = EgressBwe::new(now);
        bwe.extension_id = Some(3);
        let rtx = RtxStream { ssrc: 0xABCD, payload_type: 97, next_seq: 7 };
        let mut packet = padding_packet(&rtx, 1234);
        bwe.stamp(&mut packet, now, true);
        let wire = packet.marshal().unwrap();
        assert!(wire.len() >= PROBE_PADDING && wire.len() < PROBE_PADDING + 40, "{} bytes", wire.len());
        let parsed = rtc::rtp::Packet::unmarshal(&mut &wire[..]).unwrap();
        let header = &parsed.header;
        assert!(header.padding);
        assert!(parsed.payload.is_empty());
        assert_eq!((header.ssrc, header.payload_type, header.sequence_number, header.timestamp), (0xABCD, 97, 7, 1234));
        assert_eq!(header.get_extension(3).as_deref(), Some(&[0u8, 0][..]), "transport-wide sequence number 0");
        assert_eq!(header.extensions.len(), 1, "the rest is padding");
    }
}
