//! Repairing a publisher's uplink: its losses are NACKed by the shard (sfu_core::UplinkNacks),
//! and the retransmissions come back on RTX streams named by the repaired-rid header extension,
//! which the shard unwraps into the layer they repair (RFC 4588 section 4: the payload starts
//! with the original sequence number).

use sfu_core::{Arrival, UplinkNacks};
use sfu_proto::rtp_extensions;
use std::time::Instant;

/// RTX streams one publisher connection may have: three simulcast layers per video track, for
/// a few tracks. Past it, further RTX streams are not unwrapped (their losses stay lost).
pub(crate) const MAX_REPAIR_STREAMS: usize = 32;

/// Incoming streams whose losses one track follows: its simulcast layers, and a few more for
/// SSRC changes. A publisher inventing SSRCs gets no more state than this.
pub(crate) const MAX_NACKED_STREAMS: usize = 8;

/// The header extension ids a publisher's answer gave the mid and the repaired rid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RepairExtensionIds {
    pub mid: u8,
    pub repaired_rid: u8,
}

impl RepairExtensionIds {
    /// From our answer (its `a=extmap` lines echo the offer's ids); `None` without both.
    pub fn from_sdp(sdp: &str) -> Option<Self> {
        let id_of = |uri: &str| {
            sdp.lines().find_map(|line| {
                let rest = line.trim_end().strip_prefix("a=extmap:")?;
                let (id, tail) = rest.split_once(' ')?;
                let id = id.split('/').next()?.parse::<u8>().ok()?;
                (tail.split_whitespace().next()? == uri).then_some(id)
            })
        };
        Some(Self { mid: id_of(rtp_extensions::MID)?, repaired_rid: id_of(rtp_extensions::REPAIRED_RID)? })
    }
}

/// The state one published video track keeps per incoming SSRC.
#[derive(Default)]
pub(crate) struct TrackUplink {
    pub streams: Vec<(u32, UplinkNacks)>,
}

impl TrackUplink {
    /// What the packet `seq` on `ssrc` is to its stream, and how many packets it showed missing
    /// (they are due to be NACKed at once); `None` when the track follows too many streams
    /// already.
    pub fn on_packet(&mut self, ssrc: u32, seq: u16, now: Instant) -> Option<(Arrival, usize)> {
        let index = match self.streams.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None if self.streams.len() < MAX_NACKED_STREAMS => {
                self.streams.push((ssrc, UplinkNacks::new()));
                self.streams.len() - 1
            }
            None => return None,
        };
        let nacks = &mut self.streams[index].1;
        let missing_before = nacks.missing();
        let arrival = nacks.on_packet(seq, now);
        Some((arrival, nacks.missing().saturating_sub(missing_before)))
    }

    #[cfg(test)]
    fn poll_timeout(&self) -> Option<Instant> {
        self.streams.iter().filter_map(|(_, n)| n.poll_timeout()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids_come_from_the_answer() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
            a=extmap:11/recvonly urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n";
        assert_eq!(RepairExtensionIds::from_sdp(sdp), Some(RepairExtensionIds { mid: 4, repaired_rid: 11 }));
        let without_rrid = "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
        assert_eq!(RepairExtensionIds::from_sdp(without_rrid), None);
    }

    #[test]
    fn a_track_follows_a_bounded_number_of_streams() {
        let t0 = Instant::now();
        let mut uplink = TrackUplink::default();
        for ssrc in 0..MAX_NACKED_STREAMS as u32 {
            assert_eq!(uplink.on_packet(ssrc, 1, t0), Some((Arrival::New, 0)));
        }
        assert_eq!(uplink.on_packet(999, 1, t0), None);
        assert_eq!(uplink.on_packet(0, 3, t0), Some((Arrival::New, 1)), "2 is missing on stream 0");
        assert_eq!(uplink.poll_timeout(), Some(t0));
        assert_eq!(uplink.on_packet(0, 2, t0), Some((Arrival::Repaired, 0)));
        assert_eq!(uplink.poll_timeout(), None);
    }
}
