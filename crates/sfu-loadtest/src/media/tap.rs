//! Inbound RTCP ends at the rtc interceptor chain unless something marks it for the
//! application. A simulated publisher must see the server's keyframe requests, and a subscriber
//! its sender reports (for the round trip in its own receiver reports), so this interceptor marks
//! compound packets that carry what the connection wants.

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::any::Any;
use std::collections::VecDeque;
use std::time::Instant;

/// Chain position: after the built-in interceptors.
pub const TAP_SLOT: usize = 30_000;

pub struct DeliverRtcpTap {
    wanted: fn(&dyn Any) -> bool,
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl DeliverRtcpTap {
    fn new(wanted: fn(&dyn Any) -> bool) -> Self {
        Self { wanted, inbound: VecDeque::new(), outbound: VecDeque::new() }
    }

    /// PLI and FIR, for a publisher.
    pub fn keyframe_requests() -> Self {
        Self::new(|p| p.is::<PictureLossIndication>() || p.is::<FullIntraRequest>())
    }

    /// Sender reports, for a subscriber.
    pub fn sender_reports() -> Self {
        Self::new(|p| p.is::<SenderReport>())
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcpTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        let wanted = match &msg.message.packet {
            Packet::Rtcp(list) => list.iter().any(|p| (self.wanted)(p.as_any())),
            _ => false,
        };
        if wanted && !msg.message.has(&Attribute::DeliverToApplication) {
            msg.message.attributes.push(Attribute::DeliverToApplication);
        }
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }

    fn handle_event(&mut self, _event: ()) -> Result<(), Error> {
        Ok(())
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl Interceptor for DeliverRtcpTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Debugging aid (`LOADTEST_DEBUG=twcc`): prints a summary of every transport-cc feedback packet
/// a subscriber sends, so its content can be checked against what the server concludes.
#[derive(Default)]
pub struct FeedbackProbe {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
    reports: u64,
}

/// Wire-most, so it sees the feedback the transport-cc receiver (slot 8000) generates.
pub const PROBE_SLOT: usize = 100;

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackProbe {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(list) = &msg.message.packet {
            for p in list {
                if let Some(cc) =
                    p.as_any().downcast_ref::<rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc>()
                {
                    self.reports += 1;
                    let deltas: Vec<i64> = cc.recv_deltas.iter().map(|d| d.delta).collect();
                    let spread = deltas.iter().skip(1).sum::<i64>();
                    eprintln!(
                        "twcc #{} base {} status {} received {} ref {} first deltas {:?} span {} us",
                        self.reports,
                        cc.base_sequence_number,
                        cc.packet_status_count,
                        deltas.len(),
                        cc.reference_time,
                        &deltas[..deltas.len().min(6)],
                        spread
                    );
                }
            }
        }
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }

    fn handle_event(&mut self, _event: ()) -> Result<(), Error> {
        Ok(())
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl Interceptor for FeedbackProbe {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
