//! A subscriber's RTCP: keyframe requests relayed to the publisher's shard, NACKs answered as
//! the down track decides (`DownTrack::on_nack`; as RTX when negotiated), and congestion
//! feedback fed to the estimator.

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use std::time::Instant;

use super::ShardCore;
use super::bandwidth::send_rtx;
use crate::ConnId;
use crate::shard::command::Command;
use crate::shard::conn::Role;
use crate::shard::egress::{send_rtp, track_sent_as};

impl ShardCore {
    /// Feedback from a subscriber about its down tracks. The stack tags a compound packet with
    /// the track of its first report only, so each packet is routed by its own media SSRC.
    pub(in crate::shard) fn on_subscriber_rtcp(
        &mut self,
        id: ConnId,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
        now: Instant,
    ) {
        let mut keyframes = Vec::new();
        let mut reallocate = false;
        // RTX is written through the stack, which then needs a drain.
        let mut wrote_to_stack = false;
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        for packet in &packets {
            tracing::trace!(conn = id.0, ?packet, "subscriber rtcp");
            let any = packet.as_any();
            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                keyframes.push(pli.media_ssrc);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                keyframes.extend(fir.fir.iter().map(|entry| entry.ssrc));
            } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                if let Some(bwe) = subscriber.bwe.as_mut() {
                    bwe.on_transport_cc(cc, now);
                    self.metrics.estimate.record(bwe.estimator.estimate().as_f64());
                    reallocate = true;
                }
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                if let Some(bwe) = subscriber.bwe.as_mut() {
                    bwe.on_remb(remb.bitrate, now);
                    // A REMB may cap the estimate or stop capping it: share it out again, as
                    // after transport-cc.
                    reallocate = true;
                }
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                self.metrics.nacks_received.increment(1);
                let Some(key) = track_sent_as(&self.fanouts, &subscriber.subscribed, id, nack.media_ssrc) else {
                    continue;
                };
                let Some((subscription, payloads)) = self.fanouts.get_mut(&key).and_then(|f| f.with_payloads_mut(id))
                else {
                    continue;
                };
                let down = &mut subscription.down;
                let seqs = nack.nacks.iter().flat_map(|pair| pair.packet_list());
                let answer = down.on_nack(seqs, |source| payloads.get(source).is_some(), now);
                self.metrics.retransmissions_missed.increment(answer.missed);
                self.metrics.retransmissions_refused.increment(answer.refused);
                for (seq, sent) in answer.resend {
                    let resent = match subscriber.bwe.as_mut() {
                        Some(bwe) if down.rtx.is_some() => {
                            wrote_to_stack = true;
                            send_rtx(&mut conn.pc, down, payloads, bwe, seq, now, false).is_some()
                        }
                        bwe => {
                            let (Some(payload_type), Some(original)) = (down.payload_type, payloads.get(sent.source))
                            else {
                                continue;
                            };
                            let mut p = sent.to_packet(original, seq, down.ssrc, payload_type);
                            if let Some(bwe) = bwe {
                                bwe.stamp(&mut p, now, false);
                            }
                            send_rtp(subscriber.outbound.as_mut(), &p, sent.vp8.as_ref(), &mut self.batch).is_ok()
                        }
                    };
                    if resent {
                        self.metrics.retransmissions.increment(1);
                    }
                }
            }
        }
        let mut requests = Vec::new();
        for ssrc in keyframes {
            if let Some(key) = track_sent_as(&self.fanouts, &subscriber.subscribed, id, ssrc)
                && let Some(subscription) = self.fanouts.get(&key).and_then(|f| f.get(id))
            {
                let forwarder = &subscription.forwarder;
                let layer = forwarder.current_layer().or(forwarder.target_layer());
                if let Some(layer) = layer {
                    requests.push((key, layer));
                }
            }
        }
        for (key, layer) in requests {
            tracing::debug!(conn = id.0, track = ?key, layer, "subscriber asks for a keyframe");
            self.metrics.keyframe_requests_relayed.increment(1);
            self.send_to_shard(key.shard(), Command::KeyframeRequest { key, layer }, now);
        }
        if reallocate {
            self.reallocate(id, now);
        }
        if wrote_to_stack {
            self.mark_dirty(id);
        } else {
            self.rearm_if_sooner(id);
        }
    }
}
