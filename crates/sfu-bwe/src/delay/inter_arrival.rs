//! Arrival-time grouping: turns per-packet (send time, arrival time) pairs into inter-group delay
//! variations.
//!
//! A single packet's one-way delay is dominated by jitter; the delay *variation* between groups of
//! packets sent close together is a much cleaner congestion signal. A group is every packet sent
//! within [`SEND_GROUP_SPAN`] of the group's first packet (one video frame, or one pacer burst).
//! Packets that arrive in a burst — within [`BURST_ARRIVAL_SPAN`] of the previous one, and earlier
//! than their send spacing predicts — are merged into the current group too: they were held back
//! by something other than the bottleneck queue (Wi-Fi aggregation, a scheduler), and splitting
//! them would read as a sudden delay drop.

use std::time::{Duration, Instant};

/// Packets sent within this span of a group's first packet belong to the group.
pub(crate) const SEND_GROUP_SPAN: Duration = Duration::from_millis(5);
/// Packets arriving within this span of the previous one may join as part of a burst.
pub(crate) const BURST_ARRIVAL_SPAN: Duration = Duration::from_millis(5);
/// A burst never makes a group longer than this (in arrival time).
pub(crate) const MAX_BURST_DURATION: Duration = Duration::from_millis(100);
/// A delay jump this large means the receiver's clock or the path changed: start over.
const RESET_JUMP: Duration = Duration::from_secs(3);

/// The delay variation between two consecutive groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GroupDelta {
    /// Send-time difference of the groups' last packets, in ms.
    pub send_delta_ms: f64,
    /// Arrival-time difference of the groups' last packets, in ms.
    pub arrival_delta_ms: f64,
    /// Arrival time (receiver clock) of the later group's last packet, in ms.
    pub arrival_ms: f64,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    first_arrival: Duration,
    last_arrival: Duration,
}

impl Group {
    fn new(send: Instant, arrival: Duration) -> Self {
        Group { first_send: send, last_send: send, first_arrival: arrival, last_arrival: arrival }
    }
}

/// Groups packets and emits a [`GroupDelta`] each time a group completes.
#[derive(Debug, Default)]
pub(crate) struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
}

impl InterArrival {
    /// Add one received packet (feed in arrival order). Returns the delta between the two most
    /// recent complete groups when this packet closed a group.
    pub fn add(&mut self, send: Instant, arrival: Duration) -> Option<GroupDelta> {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group::new(send, arrival));
            return None;
        };
        if send < cur.first_send {
            return None; // reordered in send time: skip
        }
        if belongs(cur, send, arrival) {
            cur.last_send = cur.last_send.max(send);
            cur.last_arrival = cur.last_arrival.max(arrival);
            return None;
        }
        // `cur` is complete.
        let done = *cur;
        let delta = self.previous.and_then(|prev| {
            let send_delta = done.last_send.duration_since(prev.last_send);
            let arrival_delta = done.last_arrival.checked_sub(prev.last_arrival)?;
            if arrival_delta > send_delta + RESET_JUMP {
                return None;
            }
            Some(GroupDelta {
                send_delta_ms: ms(send_delta),
                arrival_delta_ms: ms(arrival_delta),
                arrival_ms: ms(done.last_arrival),
            })
        });
        let broken = self.previous.is_some() && delta.is_none();
        self.previous = if broken { None } else { Some(done) };
        self.current = Some(Group::new(send, arrival));
        delta
    }
}

fn belongs(g: &Group, send: Instant, arrival: Duration) -> bool {
    if send.duration_since(g.first_send) <= SEND_GROUP_SPAN {
        return true;
    }
    // Burst: arrives close after the previous packet and earlier than the send spacing predicts.
    let Some(arrival_delta) = arrival.checked_sub(g.last_arrival) else {
        return true; // arrived before the group's last packet: it is part of it
    };
    let send_delta = send.saturating_duration_since(g.last_send);
    arrival_delta < send_delta
        && arrival_delta <= BURST_ARRIVAL_SPAN
        && arrival.saturating_sub(g.first_arrival) < MAX_BURST_DURATION
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(packets: &[(u64, u64)]) -> Vec<(f64, f64)> {
        // (send us, arrival us) -> emitted (send delta ms, arrival delta ms)
        let t0 = Instant::now();
        let mut ia = InterArrival::default();
        packets
            .iter()
            .filter_map(|(s, a)| ia.add(t0 + Duration::from_micros(*s), Duration::from_micros(*a)))
            .map(|d| (d.send_delta_ms, d.arrival_delta_ms))
            .collect()
    }

    #[test]
    fn groups_table() {
        type Case<'a> = (&'a str, &'a [(u64, u64)], &'a [(f64, f64)]);
        let cases: &[Case<'_>] = &[
            ("one group emits nothing", &[(0, 100), (1000, 1100), (4000, 4100)], &[]),
            (
                "three groups 10 ms apart, constant delay",
                &[(0, 100), (10_000, 10_100), (20_000, 20_100), (30_000, 30_100)],
                &[(10.0, 10.0), (10.0, 10.0)],
            ),
            (
                "growing delay shows in arrival deltas",
                &[(0, 100), (10_000, 12_100), (20_000, 24_100), (30_000, 36_100)],
                &[(10.0, 12.0), (10.0, 12.0)],
            ),
            (
                "burst arrival joins the group",
                // third packet sent 8 ms later but arrives 1 ms after: burst
                &[(0, 100), (10_000, 10_100), (18_000, 11_100), (30_000, 30_100), (40_000, 40_100)],
                &[(18.0, 11.0), (12.0, 19.0)],
            ),
            (
                "send-reordered packet skipped",
                &[(0, 100), (10_000, 10_100), (5_000, 10_200), (20_000, 20_100), (30_000, 30_100)],
                &[(10.0, 10.0), (10.0, 10.0)],
            ),
        ];
        for (name, packets, want) in cases {
            assert_eq!(run(packets), want.to_vec(), "{name}");
        }
    }

    #[test]
    fn huge_jump_resets() {
        // The 5 s jump is not reported as a delay variation, and the next group starts afresh.
        let got = run(&[
            (0, 100),
            (10_000, 10_100),
            (20_000, 5_020_100),
            (30_000, 5_030_100),
            (40_000, 5_040_100),
            (50_000, 5_050_100),
        ]);
        assert_eq!(got, vec![(10.0, 10.0), (10.0, 10.0)]);
    }
}
