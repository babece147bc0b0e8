//! Subscriber-side state: a connection's bandwidth estimate, the fan-out of each track to the
//! subscribers on this shard, the SRTP the shard protects their media with, and their RTCP.

mod bwe;
mod fanout;
mod inbound_rtcp;
mod outbound;

pub(crate) use bwe::EgressBwe;
pub(crate) use fanout::{Fanout, Subscription, history_capacity, track_sent_as};
pub(crate) use inbound_rtcp::{InboundRtcp, is_rtcp};
pub(crate) use outbound::{Outbound, send_rtp};
