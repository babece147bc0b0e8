//! A subscribed track as one shard fans it out: who gets it and each one's forwarding state,
//! how its layers flow, and its recent payloads.

use bytes::Bytes;
use sfu_core::{Forwarder, LayerRates, PacketRing};
use sfu_proto::TrackKind;

use crate::ids::IdMap;
use crate::shard::down_track::DownTrack;
use crate::{ConnId, TrackKey};

/// Sent packets kept per down track for NACKs: ~1 s of a 1.5 Mbit/s layer.
pub(super) const VIDEO_HISTORY: usize = 512;
pub(super) const AUDIO_HISTORY: usize = 64;

pub(crate) struct Fanout {
    /// The connections on this shard subscribed to the track, each with its forwarder. They
    /// live here, side by side, so that a packet's decisions walk one array, and a copy that is
    /// dropped (most often: a layer the subscriber does not get) never touches its connection.
    subscriptions: Vec<Subscription>,
    /// Where each connection's subscription is in `subscriptions`.
    positions: IdMap<ConnId, usize>,
    /// Bitrate of each layer, as seen passing through this shard.
    pub layer_rates: LayerRates,
    /// The track's recent payloads, every layer's, stored once: the subscribers' NACK
    /// histories hold indices into it. Twice a history's length, so with every layer flowing
    /// it still reaches seconds back, far beyond what a NACK can usefully ask for.
    pub payloads: PacketRing<Bytes>,
}

/// One connection's subscription to the track: everything a copy needs but the connection's
/// SRTP and estimator, so that a copy looks up nothing but its connection.
pub(crate) struct Subscription {
    pub conn: ConnId,
    /// The connection is up (kept in step with its `connected`): nothing goes out before.
    pub connected: bool,
    pub forwarder: Forwarder,
    pub down: DownTrack,
}

impl Fanout {
    pub fn new(kind: TrackKind) -> Self {
        Self {
            subscriptions: Vec::new(),
            positions: IdMap::default(),
            layer_rates: LayerRates::default(),
            payloads: PacketRing::new(2 * history_capacity(kind)),
        }
    }

    /// Adds `conn`'s subscription, replacing any it had.
    pub fn add(&mut self, subscription: Subscription) {
        match self.positions.get(&subscription.conn) {
            Some(&at) => {
                if let Some(held) = self.subscriptions.get_mut(at) {
                    *held = subscription;
                }
            }
            None => {
                self.positions.insert(subscription.conn, self.subscriptions.len());
                self.subscriptions.push(subscription);
            }
        }
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Subscription> {
        let at = self.positions.remove(&conn)?;
        let removed = self.subscriptions.swap_remove(at);
        if let Some(moved) = self.subscriptions.get(at) {
            self.positions.insert(moved.conn, at);
        }
        Some(removed)
    }

    pub fn get(&self, conn: ConnId) -> Option<&Subscription> {
        self.subscriptions.get(*self.positions.get(&conn)?)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Subscription> {
        self.subscriptions.get_mut(*self.positions.get(&conn)?)
    }

    /// `conn`'s subscription, with the payloads its history points into.
    pub fn with_payloads_mut(&mut self, conn: ConnId) -> Option<(&mut Subscription, &PacketRing<Bytes>)> {
        let at = *self.positions.get(&conn)?;
        Some((self.subscriptions.get_mut(at)?, &self.payloads))
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    pub fn subscriptions_mut(&mut self) -> &mut [Subscription] {
        &mut self.subscriptions
    }

    /// Lends the subscriptions out for one packet's fan-out (the shard is borrowed meanwhile);
    /// [`put_back`](Self::put_back) returns them.
    pub fn take(&mut self) -> Vec<Subscription> {
        std::mem::take(&mut self.subscriptions)
    }

    pub fn put_back(&mut self, subscriptions: Vec<Subscription>) {
        self.subscriptions = subscriptions;
    }
}

/// Which of `subscribed` (one connection's tracks) it receives as `ssrc`.
pub(crate) fn track_sent_as(
    fanouts: &IdMap<TrackKey, Fanout>,
    subscribed: &[TrackKey],
    conn: ConnId,
    ssrc: u32,
) -> Option<TrackKey> {
    subscribed
        .iter()
        .copied()
        .find(|key| fanouts.get(key).and_then(|f| f.get(conn)).is_some_and(|s| s.down.ssrc == ssrc))
}

/// How many sent packets a subscriber's down track of this kind keeps for NACKs.
pub(crate) fn history_capacity(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => AUDIO_HISTORY,
        TrackKind::Video => VIDEO_HISTORY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu_core::VideoCodec;

    fn subscription(conn: u64) -> Subscription {
        let down = DownTrack {
            sender: Default::default(),
            ssrc: 1000 + conn as u32,
            mime: "audio/opus".into(),
            payload_type: Some(111),
            history: sfu_core::RtpHistory::new(AUDIO_HISTORY),
            resends: Default::default(),
            last_seq: None,
            last_sent_at: None,
            clock_rate: 48_000,
            clock_anchor: None,
            sent_packets: 0,
            sent_octets: 0,
            rtx: None,
            source: Default::default(),
            rendered_area: 0,
            publisher: "PA_test".into(),
            listener: "PA_listener".into(),
            allocation: None,
        };
        Subscription {
            conn: ConnId(conn),
            connected: false,
            forwarder: Forwarder::new(TrackKind::Audio, VideoCodec::from_mime("audio/opus"), 48_000),
            down,
        }
    }

    #[test]
    fn finds_each_subscription_after_removals_reorder_them() {
        let mut fanout = Fanout::new(TrackKind::Audio);
        for conn in 1..=4 {
            fanout.add(subscription(conn));
        }
        fanout.add(subscription(2)); // again: replaced, not added
        assert_eq!(fanout.subscriptions().len(), 4);
        assert_eq!(fanout.remove(ConnId(1)).map(|s| s.conn), Some(ConnId(1)));
        assert!(fanout.remove(ConnId(1)).is_none(), "removed once");
        if let Some(s) = fanout.get_mut(ConnId(4)) {
            s.connected = true;
        }
        for conn in [2, 3, 4] {
            assert_eq!(fanout.get(ConnId(conn)).map(|s| s.conn), Some(ConnId(conn)), "conn {conn}");
        }
        assert!(fanout.get(ConnId(4)).is_some_and(|s| s.connected));
        for conn in [3, 2, 4] {
            assert!(fanout.remove(ConnId(conn)).is_some());
        }
        assert!(fanout.is_empty() && fanout.get(ConnId(2)).is_none());
    }

    #[test]
    fn finds_the_track_a_connection_receives_as_an_ssrc() {
        let (audio, other) = (TrackKey::new(0, 1), TrackKey::new(0, 2));
        let mut fanouts = IdMap::default();
        for key in [audio, other] {
            let mut fanout = Fanout::new(TrackKind::Audio);
            for conn in 1..=3 {
                let mut s = subscription(conn);
                s.down.ssrc += if key == audio { 0 } else { 100 };
                fanout.add(s);
            }
            fanouts.insert(key, fanout);
        }
        let subscribed = [audio, other];
        assert_eq!(track_sent_as(&fanouts, &subscribed, ConnId(2), 1002), Some(audio));
        assert_eq!(track_sent_as(&fanouts, &subscribed, ConnId(2), 1102), Some(other));
        assert_eq!(track_sent_as(&fanouts, &subscribed, ConnId(2), 1003), None, "another connection's");
        assert_eq!(track_sent_as(&fanouts, &subscribed[..1], ConnId(2), 1102), None, "not subscribed");
    }
}
