//! Counters the shards bump on the per-packet path. Handles are resolved once per shard so a
//! packet costs an atomic add, not a registry lookup.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use sfu_core::{DropReason, PauseReason};

use crate::rejection::IngressRejection;

pub(crate) struct ShardMetrics {
    pub forwarded_packets: Counter,
    pub forwarded_bytes: Counter,
    pub received_packets: Counter,
    pub received_bytes: Counter,
    pub plis_sent: Counter,
    pub keyframe_requests_throttled: Counter,
    pub keyframe_requests_relayed: Counter,
    pub nacks_received: Counter,
    pub retransmissions: Counter,
    pub retransmissions_missed: Counter,
    pub retransmissions_refused: Counter,
    /// Room mixes: frames made, and speakers' packets the Opus decoder refused.
    pub mix_frames: Counter,
    pub mix_undecodable: Counter,
    /// Datagrams from an address no connection validated, naming no ufrag we know.
    pub unroutable_datagrams: Counter,
    /// Client addresses ICE validated (a multi-homed client has several per connection).
    pub validated_paths: Counter,
    /// Connections that went [`crate::shard`]'s consent timeout without a word, and that spoke
    /// again after it.
    pub consent_lapses: Counter,
    pub consent_revivals: Counter,
    /// Publishers' packets asked for again (one per sequence number per NACK), those that came
    /// back (on RTX or on their own stream), those that came twice, and those given up on.
    pub uplink_nacks_sent: Counter,
    pub uplink_repairs: Counter,
    pub uplink_duplicates: Counter,
    pub uplink_nack_give_ups: Counter,
    /// RTX packets from publishers, unwrapped into the layer they repair.
    pub uplink_rtx_packets: Counter,
    /// Subscribers' RTCP datagrams that failed authentication or did not parse.
    pub rtcp_rejected: Counter,
    /// Subscribers' bandwidth estimates, recorded at each transport-cc report.
    pub estimate: Histogram,
    pub send_failures: Counter,
    /// Seconds from reading a published packet off a socket to handing its copies to the kernel,
    /// one sample per `sendmmsg` call that carried copies of it (up to 64 copies each): the delay
    /// the server adds to what each subscriber receives.
    pub forward_delay: Histogram,
    /// The same up to the packet's last copy on this shard, one sample per packet: how long one
    /// packet's fan-out keeps the shard.
    pub fanout_delay: Histogram,
    /// Datagrams the kernel dropped because the shard's socket buffer was full, and the bytes
    /// waiting in it (read from /proc every second).
    pub receive_drops: Counter,
    pub receive_queue: Gauge,
    /// Packets not handed to another shard because its queue was full (FORWARD_BACKLOG_LIMIT).
    pub forward_queue_drops: Counter,
    /// Video layers shed because the shard is behind its socket (sfu_core::overload), and how
    /// often that level changed.
    pub shed_level: Gauge,
    pub shed_level_changes: Counter,
    /// Allocator decisions that changed a track, by kind of change.
    pub allocation_up: Counter,
    pub allocation_down: Counter,
    pub probe_clusters: Counter,
    pub probe_packets: Counter,
    /// Dynacast messages to publishers (a change of the layers they encode).
    pub dynacast_changes: Counter,
    drops: Vec<Counter>,
    pauses: Vec<Counter>,
    rejections: Vec<Counter>,
    limits: Vec<Counter>,
}

/// A bound on what one client can make the shard remember, reached (the oldest entry is
/// forgotten, or the new one is not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IngressLimit {
    /// Validated addresses per connection (`demux::MAX_PATHS_PER_CONN`).
    Paths,
    /// Checks awaiting a response per shard (`demux::MAX_PENDING_CHECKS`).
    PendingChecks,
    /// RTX streams unwrapped per publisher connection (`uplink::MAX_REPAIR_STREAMS`).
    RepairStreams,
    /// Incoming streams whose losses one track follows (`uplink::MAX_NACKED_STREAMS`).
    NackedStreams,
}

impl IngressLimit {
    const ALL: [IngressLimit; 4] = [Self::Paths, Self::PendingChecks, Self::RepairStreams, Self::NackedStreams];

    fn as_str(self) -> &'static str {
        match self {
            Self::Paths => "paths",
            Self::PendingChecks => "pending_checks",
            Self::RepairStreams => "repair_streams",
            Self::NackedStreams => "nacked_streams",
        }
    }
}

impl ShardMetrics {
    pub fn new(shard: usize) -> Self {
        let label = shard.to_string();
        let c = |name: &'static str| counter!(name, "shard" => label.clone());
        Self {
            forwarded_packets: c("sfu_forwarded_packets_total"),
            forwarded_bytes: c("sfu_forwarded_bytes_total"),
            received_packets: c("sfu_received_packets_total"),
            received_bytes: c("sfu_received_bytes_total"),
            plis_sent: c("sfu_pli_sent_total"),
            keyframe_requests_throttled: c("sfu_keyframe_requests_throttled_total"),
            keyframe_requests_relayed: c("sfu_keyframe_requests_from_subscribers_total"),
            nacks_received: c("sfu_nack_received_total"),
            retransmissions: c("sfu_retransmitted_packets_total"),
            retransmissions_missed: c("sfu_retransmission_misses_total"),
            retransmissions_refused: c("sfu_retransmissions_refused_total"),
            mix_frames: c("sfu_mix_frames_total"),
            mix_undecodable: c("sfu_mix_undecodable_packets_total"),
            unroutable_datagrams: c("sfu_unroutable_datagrams_total"),
            validated_paths: c("sfu_ice_validated_paths_total"),
            consent_lapses: c("sfu_consent_lapses_total"),
            consent_revivals: c("sfu_consent_revivals_total"),
            uplink_nacks_sent: c("sfu_uplink_nacks_sent_total"),
            uplink_repairs: c("sfu_uplink_repairs_total"),
            uplink_duplicates: c("sfu_uplink_duplicates_total"),
            uplink_nack_give_ups: c("sfu_uplink_nack_give_ups_total"),
            uplink_rtx_packets: c("sfu_uplink_rtx_packets_total"),
            rtcp_rejected: c("sfu_rtcp_rejected_total"),
            estimate: histogram!("sfu_subscriber_estimate_bps", "shard" => label.clone()),
            send_failures: c("sfu_udp_send_failures_total"),
            forward_delay: histogram!("sfu_forward_delay_seconds", "shard" => label.clone()),
            fanout_delay: histogram!("sfu_fanout_delay_seconds", "shard" => label.clone()),
            forward_queue_drops: c("sfu_forward_queue_drops_total"),
            shed_level: gauge!("sfu_shed_layers", "shard" => label.clone()),
            shed_level_changes: c("sfu_shed_level_changes_total"),
            receive_drops: c("sfu_udp_receive_drops_total"),
            receive_queue: gauge!("sfu_udp_receive_queue_bytes", "shard" => label.clone()),
            allocation_up: counter!("sfu_allocation_changes_total", "shard" => label.clone(), "direction" => "up"),
            allocation_down: counter!("sfu_allocation_changes_total", "shard" => label.clone(), "direction" => "down"),
            probe_clusters: c("sfu_probe_clusters_total"),
            probe_packets: c("sfu_probe_packets_total"),
            dynacast_changes: c("sfu_dynacast_changes_total"),
            pauses: PauseReason::ALL
                .iter()
                .map(|r| counter!("sfu_track_pauses_total", "shard" => label.clone(), "reason" => r.as_str()))
                .collect(),
            limits: IngressLimit::ALL
                .iter()
                .map(|l| counter!("sfu_ingress_limits_hit_total", "shard" => label.clone(), "limit" => l.as_str()))
                .collect(),
            rejections: IngressRejection::ALL
                .iter()
                .map(|r| counter!("sfu_ingress_rejected_total", "shard" => label.clone(), "reason" => r.as_str()))
                .collect(),
            drops: DropReason::ALL
                .iter()
                .map(|r| counter!("sfu_dropped_packets_total", "shard" => label.clone(), "reason" => r.as_str()))
                .collect(),
        }
    }

    /// The allocator paused a track a subscriber receives.
    pub fn paused(&self, reason: PauseReason) {
        if let Some(c) = self.pauses.get(PauseReason::ALL.iter().position(|r| *r == reason).unwrap_or(0)) {
            c.increment(1);
        }
    }

    /// The counter of a per-client bound reached (`ALL` lists the bounds in declaration order).
    pub fn limit_hit(&self, limit: IngressLimit) -> &Counter {
        &self.limits[limit as usize]
    }

    /// The stack refused a client's datagram.
    pub fn rejected(&self, reason: IngressRejection) {
        if let Some(c) = self.rejections.get(IngressRejection::ALL.iter().position(|r| *r == reason).unwrap_or(0)) {
            c.increment(1);
        }
    }

    /// Adds what one packet's fan-out counted ([`FanoutTally`]).
    pub fn add_fanout(&self, tally: &FanoutTally) {
        if tally.copies > 0 {
            crate::load::add_forwarded(tally.copies);
            self.forwarded_packets.increment(tally.copies);
            self.forwarded_bytes.increment(tally.bytes);
        }
        for (counter, &count) in self.drops.iter().zip(&tally.drops) {
            if count > 0 {
                counter.increment(u64::from(count));
            }
        }
    }
}

/// Copies and drops of one packet's fan-out, counted locally and added to the shared counters
/// once per packet rather than once per subscriber (each add is an atomic operation).
#[derive(Default)]
pub struct FanoutTally {
    copies: u64,
    bytes: u64,
    drops: [u32; DropReason::ALL.len()],
}

impl FanoutTally {
    pub fn forwarded(&mut self, bytes: usize) {
        self.copies += 1;
        self.bytes += bytes as u64;
    }

    pub fn dropped(&mut self, reason: DropReason) {
        if let Some(count) = DropReason::ALL.iter().position(|r| *r == reason).and_then(|i| self.drops.get_mut(i)) {
            *count += 1;
        }
    }
}
