//! One link to a peer node, as one shard holds it: its own SRTP contexts built from the link's
//! keys, and what it counts.
//!
//! Every shard of a node seals with the same outgoing key, so two rules keep a keystream from
//! ever being used twice (docs/cluster.md, "Media on the shard sockets"): each RTP SSRC sent on
//! the link belongs to one shard only (the receiving side issues them, each of its shards from
//! its own residue class, and never twice on a link; a shard refuses to send an SSRC it sent
//! before under another stream), and each shard's RTCP carries its own SSRC.

use bytes::Bytes;
use rtc::rtp::Packet;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use rtc::srtp::context::Context;
use sfu_srtp::SrtpSender;
use std::collections::HashSet;
use std::net::SocketAddr;

use super::stats::{LinkStats, RelayDrop};
use crate::relay::LinkSpec;
use crate::send_batch::SendBatch;

/// Replay window of what a link receives: a NACKed packet resent up to about a second late (at
/// a few hundred packets a second per layer) still opens.
pub(crate) const LINK_REPLAY_WINDOW: usize = 1024;

pub(crate) struct Link {
    /// The peer's label (logs).
    pub peer: String,
    /// Seals RTP to the peer.
    sender: SrtpSender,
    /// Seals this shard's RTCP to the peer (its own SSRC, so its own SRTCP index).
    rtcp_sealer: Context,
    /// Opens what the peer sends (RTP and RTCP).
    opener: Context,
    /// SSRCs this shard told the peer to send it on this link: never issued again, even after
    /// their track is gone (the peer may still be sending the old stream).
    pub issued: HashSet<u32>,
    /// SSRCs this shard has sent on this link: never sent again by a new stream, whose packet
    /// indices could repeat the old one's.
    pub sent: HashSet<u32>,
    pub stats: LinkStats,
}

impl Link {
    pub fn new(spec: &LinkSpec, shard: usize) -> Result<Self, String> {
        let outgoing = spec.srtp_out.srtp_keys();
        Ok(Self {
            peer: spec.peer.clone(),
            sender: SrtpSender::new(&outgoing)?,
            rtcp_sealer: outgoing.context()?,
            opener: spec.srtp_in.srtp_keys().receiving_context_with_window(LINK_REPLAY_WINDOW)?,
            issued: HashSet::new(),
            sent: HashSet::new(),
            stats: LinkStats::new(shard, &spec.peer),
        })
    }

    /// Opens and parses an RTP datagram from the peer.
    pub fn open_rtp(&mut self, datagram: &[u8]) -> Result<Packet, RelayDrop> {
        let plain = self.opener.decrypt_rtp(datagram).map_err(|_| RelayDrop::Unopened)?;
        Packet::unmarshal(&mut plain.freeze()).map_err(|_| RelayDrop::Malformed)
    }

    /// Opens and parses an RTCP datagram from the peer.
    pub fn open_rtcp(&mut self, datagram: &[u8]) -> Result<Vec<Box<dyn rtc::rtcp::Packet>>, RelayDrop> {
        let plain = self.opener.decrypt_rtcp(datagram).map_err(|_| RelayDrop::Unopened)?;
        rtc::rtcp::packet::unmarshal(&mut plain.freeze()).map_err(|_| RelayDrop::Malformed)
    }

    /// Marshals `packet` into `batch` for `dest` and seals it there; returns the bytes queued.
    /// The same packet sealed again gives the same bytes (SRTP's keystream depends only on the
    /// SSRC and the packet index), so a retransmission reveals nothing new.
    pub fn seal_rtp(&mut self, packet: &Packet, dest: SocketAddr, batch: &mut SendBatch) -> Result<usize, RelayDrop> {
        let header_len = packet.header.marshal_size();
        let plain_len = packet.marshal_size();
        let len = plain_len + self.sender.tag_len();
        let sender = &mut self.sender;
        batch.push_with(dest, len, |datagram| {
            match packet.marshal_to(&mut datagram[..plain_len]) {
                Ok(written) if written == plain_len => {}
                _ => return Err(RelayDrop::SealFailed),
            }
            sender.protect(datagram, header_len).map_err(|_| RelayDrop::SealFailed)
        })?;
        Ok(len)
    }

    /// Seals a compound RTCP packet whose first packet names this shard's RTCP SSRC.
    pub fn seal_rtcp(&mut self, packets: &[Box<dyn rtc::rtcp::Packet>]) -> Result<Bytes, RelayDrop> {
        let plain = rtc::rtcp::packet::marshal(packets).map_err(|_| RelayDrop::SealFailed)?;
        self.rtcp_sealer.encrypt_rtcp(&plain).map(|sealed| sealed.freeze()).map_err(|_| RelayDrop::SealFailed)
    }
}

/// An RTP datagram's SSRC, or an RTCP datagram's sender SSRC (both sit in the clear in SRTP and
/// SRTCP), and whether it is RTCP; `None` for anything that is neither.
pub(crate) fn relay_ssrc(datagram: &[u8]) -> Option<(u32, bool)> {
    if crate::shard::egress::is_rtcp(datagram) {
        let ssrc = u32::from_be_bytes(datagram.get(4..8)?.try_into().ok()?);
        return Some((ssrc, true));
    }
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    Some((u32::from_be_bytes(datagram[8..12].try_into().ok()?), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{LinkId, SrtpKeyMaterial};

    fn spec(out: u8, r#in: u8) -> LinkSpec {
        LinkSpec {
            link: LinkId(1),
            peer: "10.0.0.2:7882".into(),
            srtp_out: SrtpKeyMaterial { key: [out; 16], salt: [out; 12] },
            srtp_in: SrtpKeyMaterial { key: [r#in; 16], salt: [r#in; 12] },
            peer_shards: vec![],
        }
    }

    fn packet(seq: u16) -> Packet {
        let header = rtc::rtp::header::Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: 3000,
            ssrc: 77,
            ..Default::default()
        };
        Packet { header, payload: Bytes::from_static(b"relayed media") }
    }

    #[test]
    fn mirrored_keys_open_each_other_and_a_resend_is_the_same_datagram() {
        let (mut a, mut b) = (Link::new(&spec(1, 2), 0).unwrap(), Link::new(&spec(2, 1), 0).unwrap());
        let dest: SocketAddr = "10.0.0.9:7000".parse().unwrap();
        let mut batch = SendBatch::default();
        a.seal_rtp(&packet(10), dest, &mut batch).unwrap();
        a.seal_rtp(&packet(11), dest, &mut batch).unwrap();
        a.seal_rtp(&packet(10), dest, &mut batch).unwrap();
        let sent = batch.drain();
        assert_eq!(sent[0].1, sent[2].1, "sealed again, the same bytes");
        assert_eq!(relay_ssrc(&sent[0].1), Some((77, false)));
        let opened = b.open_rtp(&sent[0].1).unwrap();
        assert_eq!((opened.header.sequence_number, &opened.payload[..]), (10, &b"relayed media"[..]));
        assert_eq!(b.open_rtp(&sent[2].1).unwrap_err(), RelayDrop::Unopened, "a replay");

        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 5,
            media_ssrc: 77,
        };
        let sealed = b.seal_rtcp(&[Box::new(pli)]).unwrap();
        assert_eq!(relay_ssrc(&sealed), Some((5, true)));
        assert_eq!(a.open_rtcp(&sealed).unwrap().len(), 1);
    }

    #[test]
    fn wrong_keys_open_nothing() {
        let (mut a, mut stranger) = (Link::new(&spec(1, 2), 0).unwrap(), Link::new(&spec(3, 4), 0).unwrap());
        let mut batch = SendBatch::default();
        a.seal_rtp(&packet(1), "10.0.0.9:7000".parse().unwrap(), &mut batch).unwrap();
        let sent = batch.drain();
        assert_eq!(stranger.open_rtp(&sent[0].1).unwrap_err(), RelayDrop::Unopened);
        for garbage in [&[0x80u8, 96, 0, 1][..], &[0x80; 40], &[0x80, 200, 0, 1, 0, 0, 0, 5]] {
            assert!(stranger.open_rtp(garbage).is_err());
            assert!(stranger.open_rtcp(garbage).is_err());
        }
    }
}
