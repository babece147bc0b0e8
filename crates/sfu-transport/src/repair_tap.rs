//! Publishers' RTX packets that the rtc stack cannot place, handed to the shard instead.
//!
//! A simulcast publisher (Chromium, Safari) names its RTX streams only by the repaired-rid
//! header extension, never by SSRC in the SDP, and the stack binds a stream by rid but not by
//! repaired rid: it decrypts such a packet, counts it in transport-cc feedback, and then drops
//! it as belonging to no track. This interceptor sits at the end of a publisher connection's
//! chain (after the transport-cc recorder) and takes out every RTP packet whose SSRC was never
//! bound, into a per-thread queue that the shard empties right after the read that produced
//! them ([`take`]). The shard recognises the RTX packets among them by their repaired rid and
//! unwraps them into the layer they repair. RTX streams the SDP declares (`a=ssrc-group:FID`)
//! are bound, so the stack unwraps those itself and they pass through here untouched.

use rtc::interceptor::{Packet, StreamInfo, TaggedPacket};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

use crate::read_filter::ReadFilter;

/// Unbound packets a read may leave before the oldest are dropped: one datagram yields at most
/// one packet, and the shard empties the queue after each.
const MAX_QUEUED: usize = 64;

thread_local! {
    static UNBOUND: RefCell<VecDeque<rtc::rtp::Packet>> = const { RefCell::new(VecDeque::new()) };
}

/// The unbound RTP packets the last reads on this thread produced.
pub(crate) fn take() -> Option<rtc::rtp::Packet> {
    UNBOUND.with(|q| q.borrow_mut().pop_front())
}

fn put(packet: rtc::rtp::Packet) {
    UNBOUND.with(|q| {
        let mut q = q.borrow_mut();
        if q.len() >= MAX_QUEUED {
            q.pop_front();
        }
        q.push_back(packet);
    });
}

#[derive(Default)]
pub struct RepairTap {
    bound: HashSet<u32>,
}

impl ReadFilter for RepairTap {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtp(rtp) = &msg.message.packet
            && !self.bound.contains(&rtp.header.ssrc)
        {
            put(rtp.clone());
            return None;
        }
        Some(msg)
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.bound.insert(info.ssrc);
        self.bound.extend(info.ssrc_rtx);
        self.bound.extend(info.ssrc_fec);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.bound.remove(&info.ssrc);
        for repair in info.ssrc_rtx.iter().chain(&info.ssrc_fec) {
            self.bound.remove(repair);
        }
    }
}
