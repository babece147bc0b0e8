//! Taking over a connection's SRTP once its DTLS handshake is done: the keys the stack derived
//! (noted by sfu-srtp) protect the media the shard writes, and open the subscriber's RTCP.

use super::ShardCore;
use crate::ConnId;
use crate::shard::conn::Role;
use crate::shard::egress::{InboundRtcp, Outbound};

impl ShardCore {
    /// Right after `id` read a datagram that completed a DTLS handshake: its keys were noted
    /// while the stack derived them, and its media from now on is protected here.
    pub(in crate::shard) fn adopt_srtp_keys(&mut self, id: ConnId) {
        let Some(keys) = sfu_srtp::take_session_keys() else { return };
        let Some(conn) = self.conns.get_mut(&id) else { return };
        // A publisher's media and RTCP stay with its stack: the shard writes nothing to it.
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        match Outbound::new(&keys.local) {
            Ok(outbound) => {
                tracing::debug!(conn = id.0, profile = ?keys.local.profile, "outbound SRTP ready");
                subscriber.outbound = Some(outbound);
                conn.path_changed = true;
            }
            Err(e) => {
                tracing::error!(conn = id.0, error = %e, "no outbound SRTP context: this subscriber gets no media")
            }
        }
        if let Some(remote) = &keys.remote {
            match InboundRtcp::new(remote) {
                Ok(inbound) => subscriber.inbound_rtcp = Some(inbound),
                Err(e) => tracing::warn!(conn = id.0, error = %e, "the stack reads this subscriber's RTCP"),
            }
        }
    }
}
