//! The media a subscriber connection receives, protected and queued by the shard itself.
//!
//! Going through the `rtc` stack's write path costs several microseconds per packet (the
//! sender's parameter checks, the interceptor chain, queues between pipeline stages, a copy at
//! each). A forwarded packet needs none of it: the shard already decided, munged and stamped it.
//! So once DTLS is done, each subscriber connection gets its own SRTP context with the keys the
//! handshake derived (see `sfu_srtp`), and media and plain retransmissions go from the
//! forwarder to the shard's send batch directly. RTCP, DTLS, STUN, data channels and the RTX
//! stream stay with the stack. Each SSRC is protected by one context only, so no keystream is
//! used twice.

use rtc::rtp::Packet;
use rtc::shared::marshal::Marshal;
use rtc::srtp::context::Context;
use rtc::shared::marshal::MarshalSize;
use sfu_core::{DropReason, Vp8Rewrite};
use std::net::SocketAddr;

use crate::ConnId;
use crate::send_batch::SendBatch;
use crate::shard::Shard;
use sfu_srtp::SrtpKeys;

pub(crate) struct Outbound {
    srtp: Context,
    /// Where the client receives: the remote side of the ICE pair the stack selected (learned
    /// from the stack's own writes, which it addresses there).
    pub dest: Option<SocketAddr>,
}

impl Outbound {
    pub fn new(keys: &SrtpKeys) -> Result<Self, String> {
        Ok(Self { srtp: keys.context()?, dest: None })
    }

    /// Protects `packet`, with `vp8`'s numbering written into its payload, and queues it;
    /// returns the bytes queued.
    pub fn send(&mut self, packet: &Packet, vp8: Option<&Vp8Rewrite>, batch: &mut SendBatch) -> Result<usize, DropReason> {
        let dest = self.dest.ok_or(DropReason::NotConnected)?;
        let mut plain = packet.marshal().map_err(|_| DropReason::Malformed)?;
        if let Some(vp8) = vp8 {
            // The payload is shared by every subscriber; this copy is this subscriber's own.
            vp8.apply(&mut plain[packet.header.marshal_size()..]);
        }
        let sealed = self.srtp.encrypt_rtp_with_header(&plain, &packet.header).map_err(|_| DropReason::SrtpFailed)?;
        let size = sealed.len();
        batch.push(dest, sealed.freeze());
        Ok(size)
    }
}

/// Sends `packet` on the connection's own path, or says why it cannot.
pub(crate) fn send_rtp(
    outbound: Option<&mut Outbound>,
    packet: &Packet,
    vp8: Option<&Vp8Rewrite>,
    batch: &mut SendBatch,
) -> Result<usize, DropReason> {
    outbound.ok_or(DropReason::SrtpFailed)?.send(packet, vp8, batch)
}

impl Shard {
    /// Right after `id` read a datagram that completed a DTLS handshake: its keys were noted
    /// while the stack derived them, and its media from now on is protected here.
    pub(in crate::shard) fn adopt_srtp_keys(&mut self, id: ConnId) {
        let Some(keys) = sfu_srtp::take_local_keys() else { return };
        let Some(conn) = self.conns.get_mut(&id) else { return };
        match Outbound::new(&keys) {
            Ok(outbound) => {
                tracing::debug!(conn = id.0, profile = ?keys.profile, "outbound SRTP ready");
                conn.outbound = Some(outbound);
                conn.path_changed = true;
            }
            Err(e) => tracing::error!(conn = id.0, error = %e, "no outbound SRTP context: this subscriber gets no media"),
        }
    }
}
