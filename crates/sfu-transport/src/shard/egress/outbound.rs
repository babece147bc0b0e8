//! The media a subscriber connection receives, protected and queued by the shard itself.
//!
//! Going through the `rtc` stack's write path costs several microseconds per packet (the
//! sender's parameter checks, the interceptor chain, queues between pipeline stages, a copy at
//! each). A forwarded packet needs none of it: the shard already decided, munged and stamped it.
//! So once DTLS is done, each subscriber connection gets its own SRTP sender with the keys the
//! handshake derived (see `sfu_srtp`), and media and plain retransmissions are marshalled and
//! protected in the shard's send batch directly. RTCP, DTLS, STUN, data channels and the RTX
//! stream stay with the stack. Each SSRC is protected by one sender only, so no keystream is
//! used twice.

use crate::remote::Remote;
use crate::send_batch::SendBatch;
use rtc::rtp::Packet;
use rtc::shared::marshal::{Marshal, MarshalSize};
use sfu_core::{DropReason, Vp8Rewrite};
use sfu_srtp::{ProtectError, SrtpKeys, SrtpSender};

pub(crate) struct Outbound {
    srtp: SrtpSender,
    /// Where the client receives: the remote side of the ICE pair the stack selected (learned
    /// from the stack's own writes, which it addresses there), over UDP or its ICE-TCP
    /// connection.
    pub dest: Option<Remote>,
}

impl Outbound {
    pub fn new(keys: &SrtpKeys) -> Result<Self, String> {
        Ok(Self { srtp: SrtpSender::new(keys)?, dest: None })
    }

    /// Marshals `packet` into `batch`, writes `vp8`'s numbering into its payload, protects it
    /// there and queues it; returns the bytes queued.
    pub fn send(
        &mut self,
        packet: &Packet,
        vp8: Option<&Vp8Rewrite>,
        batch: &mut SendBatch,
    ) -> Result<usize, DropReason> {
        let dest = self.dest.ok_or(DropReason::NotConnected)?;
        let header_len = packet.header.marshal_size();
        let plain_len = packet.marshal_size();
        let len = plain_len + self.srtp.tag_len();
        batch.push_with(dest, len, |datagram| {
            let written = packet.marshal_to(&mut datagram[..plain_len]).map_err(|_| DropReason::Malformed)?;
            if written != plain_len {
                return Err(DropReason::Malformed);
            }
            if let Some(vp8) = vp8 {
                // The payload is shared by every subscriber; this copy is this subscriber's own.
                vp8.apply(&mut datagram[header_len..plain_len]);
            }
            self.srtp.protect(datagram, header_len).map_err(|e| match e {
                ProtectError::BadLayout => DropReason::Malformed,
                ProtectError::IndexExhausted | ProtectError::Cipher => DropReason::SrtpFailed,
            })
        })?;
        Ok(len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use sfu_srtp::SrtpProfile;

    fn packet(seq: u16, payload: &[u8]) -> Packet {
        let header = rtc::rtp::header::Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            ssrc: 7,
            ..Default::default()
        };
        Packet { header, payload: bytes::Bytes::copy_from_slice(payload) }
    }

    /// Packets are marshalled into one reused buffer: a short packet after a long one must not
    /// carry the long one's bytes.
    #[test]
    fn each_datagram_opens_to_exactly_its_packet() {
        for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
            let keys = SrtpKeys { profile, master_key: vec![3; 16], master_salt: vec![5; profile.rtc().salt_len()] };
            let mut outbound = Outbound::new(&keys).unwrap();
            let mut batch = SendBatch::default();
            assert_eq!(outbound.send(&packet(1, b"x"), None, &mut batch), Err(DropReason::NotConnected));
            outbound.dest = Some(Remote::udp("127.0.0.1:9".parse().unwrap()));
            let sent = [packet(1, &[0xaa; 1100]), packet(2, b"short")];
            for p in &sent {
                let queued = outbound.send(p, None, &mut batch).unwrap();
                assert_eq!(queued, p.marshal_size() + outbound.srtp.tag_len());
            }
            let mut receiver = keys.context().unwrap();
            for (p, (_, datagram)) in sent.iter().zip(batch.queued()) {
                let opened = receiver.decrypt_rtp(datagram).unwrap();
                assert_eq!(&opened[..], &p.marshal().unwrap()[..]);
            }
        }
    }
}
