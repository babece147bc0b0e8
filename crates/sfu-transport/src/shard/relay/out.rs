//! One published track sent over one link: a remote node is one subscriber per track
//! (docs/cluster.md). It decides per packet whether the packet crosses, gives each layer its
//! own gap-free sequence on the link, and keeps what it sent to answer the peer's NACKs.
//!
//! Decide, then apply: [`RelayOut::on_packet`] returns the packet to seal, or why not; the
//! shard seals and queues it.

use bytes::Bytes;
use rtc::rtp::Packet;
use rtc::rtp::header::Header;
use sfu_core::{KeyframeRequestThrottle, LayerSet, PacketMeta, ResendGuard, RtpHistory, RtpMunger};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stats::RelayDrop;
use crate::relay::LinkId;

/// Packets kept per layer to answer NACKs: about a second of a high layer.
pub(crate) const LINK_HISTORY: usize = 512;

/// The payload type of everything on a link: the receiving node rewrites it per subscriber by
/// codec, as it does for a client's packets.
pub(crate) const LINK_PAYLOAD_TYPE: u8 = 96;

/// A layer nobody uses any more keeps crossing this long, so an allocation that flaps does not
/// cost a keyframe each time.
pub(crate) const LAYER_LEAVE_DELAY: Duration = Duration::from_secs(2);

/// Where one layer stands on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not crossing.
    Off,
    /// Wanted: crosses from its next keyframe on.
    Joining,
    /// Crossing.
    On,
    /// Unwanted, but crossing until then.
    Leaving { until: Instant },
}

/// What a packet that crossed is remembered by: enough to send the very same bytes again.
struct Sent {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    resends: ResendGuard,
}

struct OutLayer {
    ssrc: u32,
    gate: Gate,
    /// Numbers the layer's packets on the link: no gaps but the publisher's own losses, and a
    /// rejoin continues right after the last packet sent.
    munger: RtpMunger,
    history: RtpHistory<Sent>,
}

pub(crate) struct RelayOut {
    pub link: LinkId,
    pub dest: SocketAddr,
    layers: Vec<OutLayer>,
    /// Whether a layer joins at a keyframe (video) or at once (audio, which has none).
    gated: bool,
    /// Keyframe requests for joining layers, paced per layer.
    requests: KeyframeRequestThrottle,
}

impl RelayOut {
    /// Sends layer `i` as `ssrcs[i]`. With `gated`, layers start out joining (each waits for its
    /// keyframe); otherwise (audio, which has none) every layer crosses at once.
    pub fn new(link: LinkId, dest: SocketAddr, ssrcs: &[u32], gated: bool) -> Self {
        let gate = if gated { Gate::Joining } else { Gate::On };
        let layers = ssrcs
            .iter()
            .map(|&ssrc| OutLayer {
                ssrc,
                gate,
                munger: RtpMunger::new(90_000),
                history: RtpHistory::new(LINK_HISTORY),
            })
            .collect();
        Self { link, dest, layers, gated, requests: KeyframeRequestThrottle::new() }
    }

    /// The link SSRCs, by layer.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.layers.iter().map(|l| l.ssrc)
    }

    /// The layers that cross (or are about to).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn crossing(&self) -> LayerSet {
        (0..self.layers.len())
            .filter(|&i| !matches!(self.layers[i].gate, Gate::Off))
            .filter_map(|i| u8::try_from(i).ok())
            .collect()
    }

    /// The peer's subscribers use `used`: layers new to it join at their next keyframe (the
    /// returned set, whose keyframes to ask for now; audio joins at once), layers no longer used leave after
    /// [`LAYER_LEAVE_DELAY`].
    pub fn set_used(&mut self, used: LayerSet, now: Instant) -> LayerSet {
        let mut joining = LayerSet::EMPTY;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let Ok(index) = u8::try_from(i) else { break };
            layer.gate = match (layer.gate, used.contains(index)) {
                (Gate::Off, true) => {
                    if self.gated {
                        joining = joining.with(index);
                    }
                    Gate::Joining
                }
                (Gate::Leaving { .. }, true) => Gate::On,
                (Gate::On, false) => Gate::Leaving { until: now + LAYER_LEAVE_DELAY },
                (Gate::Joining, false) => Gate::Off,
                (gate, _) => gate,
            };
        }
        for index in (0..sfu_core::MAX_LAYERS as u8).filter(|l| joining.contains(*l)) {
            // Asked for by the caller now; again after an interval.
            self.requests.should_send(index, now);
        }
        joining
    }

    /// What to send on the link for this packet of the track, or why nothing.
    pub fn on_packet(&mut self, meta: &PacketMeta, payload: &Bytes, now: Instant) -> Result<Packet, RelayDrop> {
        // Audio joins at any packet; the link's numbering goes on from where it stopped.
        let starts_here = meta.keyframe || !self.gated;
        let layer = self.layers.get_mut(usize::from(meta.layer)).ok_or(RelayDrop::NotOnLink)?;
        match layer.gate {
            Gate::Off => return Err(RelayDrop::NotOnLink),
            Gate::Leaving { until } if now >= until => {
                layer.gate = Gate::Off;
                return Err(RelayDrop::NotOnLink);
            }
            Gate::Joining if starts_here && !meta.padding_only => {
                layer.gate = Gate::On;
                layer.munger.switch_to(meta.seq, meta.timestamp, now);
            }
            Gate::Joining => return Err(RelayDrop::AwaitingKeyframe),
            Gate::On | Gate::Leaving { .. } => {}
        }
        if meta.padding_only {
            layer.munger.skip(meta.seq);
            return Err(RelayDrop::Padding);
        }
        let (seq, _) = layer.munger.forward(meta.seq, meta.timestamp, now).map_err(RelayDrop::from)?;
        let sent = Sent {
            timestamp: meta.timestamp,
            marker: meta.marker,
            payload: payload.clone(),
            resends: ResendGuard::default(),
        };
        let packet = link_packet(layer.ssrc, seq, &sent);
        layer.history.insert(seq, sent);
        Ok(packet)
    }

    /// The joining layers whose keyframe is to be asked for now: at once, then again each
    /// request interval until it comes.
    pub fn poll_keyframe_requests(&mut self, now: Instant) -> LayerSet {
        let mut due = LayerSet::EMPTY;
        for (i, layer) in self.layers.iter().enumerate() {
            let Ok(index) = u8::try_from(i) else { break };
            if layer.gate == Gate::Joining && self.requests.should_send(index, now) {
                due = due.with(index);
            }
        }
        due
    }

    /// The packet sent as `seq` on `ssrc`, to send again exactly as it was; `None` when it left
    /// the history or was re-sent enough already.
    pub fn resend(&mut self, ssrc: u32, seq: u16, now: Instant) -> Option<Packet> {
        let layer = self.layers.iter_mut().find(|l| l.ssrc == ssrc)?;
        let sent = layer.history.get_mut(seq)?;
        sent.resends.allow(now).then(|| link_packet(ssrc, seq, sent))
    }
}

/// The packet as it goes on the link: nothing of the publisher's header but its timestamp and
/// marker, so a resend marshals to the very same bytes.
fn link_packet(ssrc: u32, seq: u16, sent: &Sent) -> Packet {
    let header = Header {
        version: 2,
        marker: sent.marker,
        payload_type: LINK_PAYLOAD_TYPE,
        sequence_number: seq,
        timestamp: sent.timestamp,
        ssrc,
        ..Default::default()
    };
    Packet { header, payload: sent.payload.clone() }
}

#[cfg(test)]
#[path = "out_tests.rs"]
mod tests;
