//! What one shard counts about one link, both as Prometheus counters (labelled by the link's
//! `peer` and the shard) and as plain numbers the tests read back.

use metrics::{Counter, counter};
use sfu_core::MAX_LAYERS;

/// Why a relay packet was not passed on (over the link, or from it to the track's subscribers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayDrop {
    /// In: the link's keys did not open it (wrong keys, forged, corrupt, or a replay).
    Unopened,
    /// In: it opened, but what is inside does not parse.
    Malformed,
    /// Both ways: the packet came before.
    Duplicate,
    /// Out: padding only, which nobody on the other side has use for.
    Padding,
    /// Out: older than what was already sent on the link, its slot gone.
    OutOfOrderTooOld,
    /// Out: a layer the link does not carry (no SSRC for it, or nobody there uses it).
    NotOnLink,
    /// Out: a layer joining the link waits for its keyframe.
    AwaitingKeyframe,
    /// Out: sealing it failed (its SRTP stream is exhausted, or the packet would not marshal).
    SealFailed,
}

impl RelayDrop {
    pub const ALL: [RelayDrop; 8] = [
        Self::Unopened,
        Self::Malformed,
        Self::Duplicate,
        Self::Padding,
        Self::OutOfOrderTooOld,
        Self::NotOnLink,
        Self::AwaitingKeyframe,
        Self::SealFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unopened => "unopened",
            Self::Malformed => "malformed",
            Self::Duplicate => "duplicate",
            Self::Padding => "padding",
            Self::OutOfOrderTooOld => "out_of_order_too_old",
            Self::NotOnLink => "not_on_link",
            Self::AwaitingKeyframe => "awaiting_keyframe",
            Self::SealFailed => "seal_failed",
        }
    }
}

impl From<sfu_core::DropReason> for RelayDrop {
    fn from(reason: sfu_core::DropReason) -> Self {
        match reason {
            sfu_core::DropReason::Duplicate => Self::Duplicate,
            sfu_core::DropReason::Padding => Self::Padding,
            _ => Self::OutOfOrderTooOld,
        }
    }
}

/// One counter, kept twice: in the metrics registry and here.
pub(crate) struct Count {
    counter: Counter,
    value: u64,
}

impl Count {
    fn new(counter: Counter) -> Self {
        Self { counter, value: 0 }
    }

    pub fn add(&mut self, n: u64) {
        if n > 0 {
            self.value += n;
            self.counter.increment(n);
        }
    }

    #[cfg(test)]
    pub fn get(&self) -> u64 {
        self.value
    }
}

/// Which way a packet crossed the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    In,
    Out,
}

/// A count per direction.
pub(crate) struct InOut {
    pub inbound: Count,
    pub outbound: Count,
}

impl InOut {
    fn new(name: &'static str, shard: &str, peer: &str) -> Self {
        let make = |direction: &'static str| {
            Count::new(counter!(name, "shard" => shard.to_owned(), "peer" => peer.to_owned(), "direction" => direction))
        };
        Self { inbound: make("in"), outbound: make("out") }
    }

    pub fn get_mut(&mut self, direction: Direction) -> &mut Count {
        match direction {
            Direction::In => &mut self.inbound,
            Direction::Out => &mut self.outbound,
        }
    }
}

/// Everything one shard counts about one link (docs/cluster.md, "Metrics per peer").
pub(crate) struct LinkStats {
    /// Media packets per direction and layer, retransmissions excluded.
    packets: [Vec<Count>; 2],
    pub bytes: InOut,
    /// Packets missing from what the peer sent here (each gap's packets once).
    pub lost: Count,
    /// Sequence numbers asked for again: in = the peer asked us, out = we asked the peer.
    pub nacks: InOut,
    /// Packets sent again from the link's history on the peer's NACK.
    pub retransmissions: Count,
    pub plis: InOut,
    /// RTP or RTCP from a peer's address whose SSRC no track or shard of the link has here.
    pub unknown_ssrcs: Count,
    /// Datagrams for this link that its keys did not open.
    pub decrypt_failures: Count,
    drops: Vec<Count>,
}

impl LinkStats {
    pub fn new(shard: usize, peer: &str) -> Self {
        let shard = shard.to_string();
        let one = |name: &'static str| Count::new(counter!(name, "shard" => shard.clone(), "peer" => peer.to_owned()));
        let per_layer = |direction: &'static str| {
            (0..MAX_LAYERS)
                .map(|layer| {
                    Count::new(counter!("sfu_relay_packets_total", "shard" => shard.clone(), "peer" => peer.to_owned(),
                        "direction" => direction, "layer" => layer.to_string()))
                })
                .collect()
        };
        Self {
            packets: [per_layer("in"), per_layer("out")],
            bytes: InOut::new("sfu_relay_bytes_total", &shard, peer),
            lost: one("sfu_relay_lost_packets_total"),
            nacks: InOut::new("sfu_relay_nacks_total", &shard, peer),
            retransmissions: one("sfu_relay_retransmissions_total"),
            plis: InOut::new("sfu_relay_plis_total", &shard, peer),
            unknown_ssrcs: one("sfu_relay_unknown_ssrcs_total"),
            decrypt_failures: one("sfu_relay_decrypt_failures_total"),
            drops: RelayDrop::ALL
                .iter()
                .map(|reason| {
                    Count::new(counter!("sfu_relay_dropped_packets_total", "shard" => shard.clone(),
                        "peer" => peer.to_owned(), "reason" => reason.as_str()))
                })
                .collect(),
        }
    }

    /// A media packet of `layer` and `bytes` of payload crossed the link.
    pub fn packet(&mut self, direction: Direction, layer: u8, bytes: usize) {
        let index = usize::from(layer).min(MAX_LAYERS - 1);
        self.packets[direction as usize][index].add(1);
        self.bytes.get_mut(direction).add(bytes as u64);
    }

    #[cfg(test)]
    pub fn packets(&self, direction: Direction, layer: u8) -> u64 {
        self.packets[direction as usize].get(usize::from(layer)).map_or(0, Count::get)
    }

    pub fn dropped(&mut self, reason: RelayDrop) {
        if let Some(count) = RelayDrop::ALL.iter().position(|r| *r == reason).and_then(|i| self.drops.get_mut(i)) {
            count.add(1);
        }
    }

    #[cfg(test)]
    pub fn drops(&self, reason: RelayDrop) -> u64 {
        RelayDrop::ALL.iter().position(|r| *r == reason).and_then(|i| self.drops.get(i)).map_or(0, Count::get)
    }
}
