//! A subscriber's RTCP as the shard reads it: SRTCP opened (or refused) with the connection's
//! keys, and the feedback inside fed to the bandwidth estimator as a subscriber's would be.

use arbitrary::Unstructured;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use sfu_srtp::{SrtpKeys, SrtpProfile};
use std::time::{Duration, Instant};

use crate::shard::egress::{EgressBwe, InboundRtcp};

fn keys(profile: SrtpProfile) -> SrtpKeys {
    SrtpKeys { profile, master_key: vec![7; 16], master_salt: vec![3; profile.rtc().salt_len()] }
}

/// Each input is a run of datagrams: sealed by the subscriber's keys first (so that what is
/// inside reaches the RTCP parser and the estimator), or as they come (to the SRTCP check).
pub fn subscriber_rtcp(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(gcm) = u.arbitrary::<bool>() else { return };
    let profile = if gcm { SrtpProfile::AeadAes128Gcm } else { SrtpProfile::Aes128CmHmacSha1_80 };
    let mut subscriber = keys(profile).context().expect("fixed keys make a context");
    let mut inbound = InboundRtcp::new(&keys(profile)).expect("fixed keys make a context");
    let start = Instant::now();
    let mut now = start;
    let mut bwe = EgressBwe::new(now);
    bwe.extension_id = Some(5);
    let mut sent = rtc::rtp::Packet::default();
    for _ in 0..64 {
        let (Ok(seal), Ok(step_ms), Ok(stamped), Ok(datagram)) =
            (u.arbitrary::<bool>(), u.int_in_range(0..=200u64), u.int_in_range(0..=64u8), u.arbitrary::<Vec<u8>>())
        else {
            break;
        };
        now += Duration::from_millis(step_ms);
        // Media left for this subscriber meanwhile, for the feedback to speak of.
        for _ in 0..stamped {
            bwe.stamp(&mut sent, now, false);
        }
        let datagram = if seal {
            match subscriber.encrypt_rtcp(&datagram) {
                Ok(sealed) => sealed.to_vec(),
                Err(_) => continue,
            }
        } else {
            datagram
        };
        let Ok(packets) = inbound.open(&datagram) else { continue };
        for packet in &packets {
            let any = packet.as_any();
            if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                bwe.on_transport_cc(cc, now);
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                bwe.on_remb(remb.bitrate, now);
            }
        }
        if bwe.poll_timeout().is_some_and(|at| at <= now) {
            bwe.handle_timeout(now);
        }
        let estimate = bwe.estimator.estimate().as_f64();
        assert!(estimate.is_finite() && estimate >= 0.0, "estimate {estimate}");
    }
}
