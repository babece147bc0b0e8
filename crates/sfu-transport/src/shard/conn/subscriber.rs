//! What only a subscribing connection has: the tracks it receives, its bandwidth estimate,
//! and the SRTP contexts the shard writes its media and reads its RTCP with.

use std::time::Instant;

use crate::TrackKey;
use crate::shard::egress::{EgressBwe, InboundRtcp, Outbound};

#[derive(Default)]
pub(crate) struct SubscriberConn {
    /// The tracks it receives. Each one's down track lives in the track's fan-out (`Fanout`),
    /// beside its forwarder, where the per-packet path finds it.
    pub subscribed: Vec<TrackKey>,
    /// The bandwidth estimate of this connection, when the shard estimates.
    pub bwe: Option<EgressBwe>,
    /// The SRTP context and path its media is written on, once DTLS is done.
    pub outbound: Option<Outbound>,
    /// Its RTCP, opened by the shard once DTLS is done.
    pub inbound_rtcp: Option<InboundRtcp>,
    /// When its next RTCP sender reports are due.
    pub sender_report_at: Option<Instant>,
}

impl SubscriberConn {
    pub fn new(bwe: Option<EgressBwe>) -> Self {
        Self { bwe, ..Self::default() }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.bwe.as_ref().and_then(|b| b.poll_timeout()), self.sender_report_at].into_iter().flatten().min()
    }
}
