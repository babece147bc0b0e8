//! The shard's state machine: every connection multiplexed on one socket, the tracks published
//! or subscribed through them, and the forwarding between them. No I/O and no clock: time is an
//! argument, and what must leave is queued for the caller (see the crate docs for the contract).

use bytes::BytesMut;
use rtc::peer_connection::message::TaggedRTCMessage;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext};
use sfu_proto::ParticipantId;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

mod bandwidth;
mod connection;
mod dynacast;
mod feedback;
mod mix;
mod overload;
mod publish;
mod relay_in;
mod relay_layers;
mod relay_link;
mod relay_out;
mod relay_repair;
mod reports;
mod speakers;
mod srtp;
mod subscribe;
mod uplink;

pub(crate) use overload::BACKLOG_SAMPLE_INTERVAL;

use super::command::Command;
use super::conn::{Conn, Role};
use super::demux::{Demux, Route};
use super::egress;
use super::published::{DemandFrom, Published};
use super::relay::Relay;
use super::relay::inbound::Demand;
use crate::api::MediaEvent;
use crate::ids::IdMap;
use crate::metrics::{IngressLimit, ShardMetrics};
use crate::rejection::IngressRejection;
use crate::remote::{Remote, Transport};
use crate::send_batch::{MAX_PER_CALL, SendBatch};
use crate::{ConnId, TrackKey};

/// What a shard is, fixed for its life.
#[derive(Clone, Debug)]
pub(crate) struct ShardSettings {
    /// Its place among the plane's shards (the shard part of every [`ConnId`] and [`TrackKey`]).
    pub index: usize,
    /// The address clients reach its socket at: its host candidate.
    pub announce: SocketAddr,
    /// The node's ICE-TCP port at the announced address, when it has one: every connection
    /// also gets a passive TCP host candidate there.
    pub tcp_announce: Option<SocketAddr>,
    /// Subscriber connections negotiate transport-cc and estimate their bandwidth.
    pub estimate_bandwidth: bool,
    /// Publishers are told which simulcast layers anyone wants.
    pub dynacast: bool,
    /// How many shards the plane has (relay SSRCs are issued from this shard's residue class).
    pub shards: usize,
    /// The SSRC of this shard's RTCP on links to other nodes (see `relay::rtcp_ssrcs`).
    pub relay_rtcp_ssrc: u32,
}

/// Rounds of draining per settle: connections that keep touching each other wait for the next.
const MAX_SETTLE_ROUNDS: u32 = 16;

/// How often ingress limits hit are copied to the metrics.
const LIMITS_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One shard's connections, tracks and forwarding state, driven by its caller (see the crate
/// docs): inputs go in with the time they happened, outputs are polled.
pub(crate) struct ShardCore {
    index: usize,
    announce: SocketAddr,
    tcp_announce: Option<SocketAddr>,
    estimate_bandwidth: bool,
    dynacast: bool,
    /// The wall clock at one instant, for the NTP times of RTCP sender reports.
    wall_clock: (Instant, SystemTime),
    conns: IdMap<ConnId, Conn>,
    /// Which connection each datagram belongs to.
    demux: Demux,
    /// Tracks published by connections on this shard.
    published: IdMap<TrackKey, Published>,
    /// Each track connections on this shard subscribe to (wherever it is published): who,
    /// its layers' bitrates here, its recent payloads.
    fanouts: IdMap<TrackKey, egress::Fanout>,
    /// What this shard's subscribers of each track ask for and use, as last told to the
    /// track's publisher shard.
    layer_demand: IdMap<TrackKey, Demand>,
    /// Participants (of any room) who are speaking now: their video goes first.
    speaking: HashSet<ParticipantId>,
    timers: BTreeSet<(Instant, ConnId)>,
    /// When the loudness of the audio published here is next reported, and the ingress
    /// limits copied to the metrics.
    next_speaker_report: Instant,
    next_limits_report: Instant,
    /// When the layers of tracks that cross links are next compared with what was last said.
    next_layers_check: Instant,
    dirty: Vec<ConnId>,
    /// Application messages drained from connections' stacks, not yet handled (see `settle`).
    pending_reads: VecDeque<(ConnId, TaggedRTCMessage)>,
    settle_rounds: u32,
    /// Output: datagrams to send.
    batch: SendBatch,
    /// Output: commands for other shards, and events for the control plane.
    to_shards: VecDeque<(usize, Command)>,
    events: VecDeque<MediaEvent>,
    /// The packet each forwarded copy is built in before it is marshalled into `batch`: reused,
    /// so stamping the transport-cc extension allocates nothing per copy.
    outgoing: rtc::rtp::Packet,
    /// When each published packet with copies in `batch` was read from a socket (this shard's
    /// or another's): the fan-out delay ends when the batch is handed to the kernel.
    forwarded_arrivals: Vec<Instant>,
    /// The same for each packet with copies in `batch` now: their delay ends at the next send.
    queued_copies: Vec<Instant>,
    next_track_serial: u64,
    /// How many video layers the shard sheds because it cannot keep up.
    overload: sfu_core::OverloadGuard,
    /// Links to other nodes and what crosses them.
    relay: Relay,
    /// Room mixes made here, by their track's key, and which mix each input track feeds.
    mixes: IdMap<TrackKey, super::mix::RoomMix>,
    mix_inputs: IdMap<TrackKey, TrackKey>,
    metrics: ShardMetrics,
}

impl ShardCore {
    /// A shard with no connections; `now` and `wall_clock` are the same moment.
    pub fn new(settings: ShardSettings, now: Instant, wall_clock: SystemTime) -> Self {
        let ShardSettings { index, announce, tcp_announce, estimate_bandwidth, dynacast, shards, relay_rtcp_ssrc } =
            settings;
        Self {
            index,
            announce,
            tcp_announce,
            estimate_bandwidth,
            dynacast,
            wall_clock: (now, wall_clock),
            conns: IdMap::default(),
            demux: Demux::default(),
            published: IdMap::default(),
            fanouts: IdMap::default(),
            layer_demand: IdMap::default(),
            speaking: HashSet::new(),
            timers: BTreeSet::new(),
            next_speaker_report: now + sfu_core::SPEAKER_REPORT_INTERVAL,
            next_limits_report: now + LIMITS_REPORT_INTERVAL,
            next_layers_check: now + relay_layers::LAYERS_ACTIVE_CHECK,
            dirty: Vec::new(),
            pending_reads: VecDeque::new(),
            settle_rounds: 0,
            batch: SendBatch::default(),
            to_shards: VecDeque::new(),
            events: VecDeque::new(),
            outgoing: rtc::rtp::Packet::default(),
            forwarded_arrivals: Vec::new(),
            queued_copies: Vec::new(),
            next_track_serial: 1,
            overload: sfu_core::OverloadGuard::new(),
            relay: Relay::new(index, shards, relay_rtcp_ssrc),
            mixes: IdMap::default(),
            mix_inputs: IdMap::default(),
            metrics: ShardMetrics::new(index),
        }
    }

    /// Time passed: connections' timers that are due fire, and the periodic reports.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_conn_timeouts(now);
        self.on_relay_nack_timeout(now);
        self.run_mixes(now);
        if now >= self.next_speaker_report {
            self.report_audio_levels();
            self.next_speaker_report = (self.next_speaker_report + sfu_core::SPEAKER_REPORT_INTERVAL).max(now);
        }
        if now >= self.next_layers_check {
            self.check_layers_active(now);
            self.next_layers_check = now + relay_layers::LAYERS_ACTIVE_CHECK;
        }
        if now >= self.next_limits_report {
            let hit = self.demux.limits_hit();
            self.metrics.limit_hit(IngressLimit::Paths).absolute(hit.paths);
            self.metrics.limit_hit(IngressLimit::PendingChecks).absolute(hit.pending_checks);
            self.next_limits_report = now + LIMITS_REPORT_INTERVAL;
        }
    }

    /// The wall-clock time at `now`.
    pub(crate) fn wall_clock_at(&self, now: Instant) -> SystemTime {
        let (at, wall) = self.wall_clock;
        match now.checked_duration_since(at) {
            Some(later) => wall + later,
            None => wall - at.saturating_duration_since(now),
        }
    }

    /// A datagram read at `now`: from the shard's UDP socket, or a frame from a client's ICE-TCP
    /// connection (whose `from` is that connection's remote end).
    pub fn handle_datagram(&mut self, datagram: &[u8], from: impl Into<Remote>, now: Instant) {
        let from = from.into();
        let (conn_id, validated) = match self.demux.route(datagram, from) {
            Route::Validated(id) => (id, true),
            // STUN from an address ICE has not validated: only the agent may see it.
            Route::Unvalidated(id) => (id, false),
            Route::Unroutable => {
                // Other nodes relay over UDP only.
                let relayed = from.transport == Transport::Udp && self.on_relay_datagram(datagram, from.addr, now);
                if !relayed {
                    self.metrics.unroutable_datagrams.increment(1);
                }
                return;
            }
        };
        // The stack matches this against its host candidates, which name the announced
        // addresses: with a wildcard bind or behind a 1:1 NAT the socket's own differs.
        let local_addr = match from.transport {
            Transport::Udp => self.announce,
            Transport::Tcp => self.tcp_announce.unwrap_or(self.announce),
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        if validated
            && egress::is_rtcp(datagram)
            && let Some(inbound) = conn.role.subscriber_mut().and_then(|s| s.inbound_rtcp.as_mut())
        {
            match inbound.open(datagram) {
                Ok(packets) => {
                    self.on_heard(conn_id, now);
                    self.on_subscriber_rtcp(conn_id, packets, now);
                    return;
                }
                Err(reason) if !inbound.given_up() => {
                    tracing::debug!(conn = conn_id.0, ?reason, "subscriber RTCP rejected");
                    self.metrics.rtcp_rejected.increment(1);
                    return;
                }
                Err(_) => {
                    tracing::warn!(conn = conn_id.0, "SRTCP keys open nothing: the stack reads this subscriber's RTCP");
                    if let Some(subscriber) = conn.role.subscriber_mut() {
                        subscriber.inbound_rtcp = None;
                    }
                }
            }
        }
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from.addr,
                transport_protocol: from.protocol(),
                ecn: None,
            },
            message: BytesMut::from(datagram),
        };
        let publisher = matches!(conn.role, Role::Publisher(_));
        match conn.pc.handle_read(message) {
            // Authenticated (STUN that passed its integrity check, SRTP that opened, DTLS): the
            // client is there.
            Ok(()) => self.on_heard(conn_id, now),
            Err(e) => {
                let reason = IngressRejection::of(&e, datagram);
                tracing::debug!(conn = conn_id.0, error = %e, reason = reason.as_str(), "datagram rejected");
                self.metrics.rejected(reason);
            }
        }
        if sfu_srtp::has_notes() {
            self.adopt_srtp_keys(conn_id);
        }
        if publisher {
            while let Some(packet) = crate::repair_tap::take() {
                self.on_unbound_rtp(conn_id, packet, now, now);
            }
        }
        self.mark_dirty(conn_id);
    }

    /// Drains every connection touched by the inputs since the last call: what their stacks
    /// write joins the transmits, their events are handled, their timers re-filed, and the
    /// application messages they read (published media, subscribers' feedback, data) are
    /// handled one by one. Returns true when it stopped early because outputs are worth taking
    /// now (a send call's worth of datagrams, or commands for other shards): take them and call
    /// again. So a busy wakeup neither holds every copy of every packet in memory nor keeps the
    /// other shards waiting until it ends.
    pub fn settle(&mut self, now: Instant) -> bool {
        loop {
            while let Some((id, message)) = self.pending_reads.pop_front() {
                self.handle_message(id, message.message, message.now, now);
                if self.batch.len() >= MAX_PER_CALL || !self.to_shards.is_empty() {
                    return true;
                }
            }
            // Connections may touch each other (a subscriber's feedback, a keyframe request):
            // a bounded number of rounds, the rest at the next call.
            if self.dirty.is_empty() || self.settle_rounds >= MAX_SETTLE_ROUNDS {
                self.settle_rounds = 0;
                return false;
            }
            self.settle_rounds += 1;
            for id in std::mem::take(&mut self.dirty) {
                self.drain(id, now);
            }
        }
    }

    /// The datagrams to send, in order. The caller hands them to the kernel (emptying the
    /// batch), then calls [`Self::handle_transmitted`].
    pub fn transmits(&mut self) -> &mut SendBatch {
        &mut self.batch
    }

    /// The transmits were handed to the kernel at `sent_at`: the copies of each packet in
    /// `queued_copies` left then (one delay sample per packet and send, not per copy: a sample
    /// costs about as much as encrypting a copy), and every packet in `forwarded_arrivals` has
    /// all its copies sent by now (some perhaps by an earlier send), so its fan-out delay ends.
    pub fn handle_transmitted(&mut self, sent_at: Instant) {
        for arrived in self.queued_copies.drain(..) {
            self.metrics.forward_delay.record(sent_at.saturating_duration_since(arrived).as_secs_f64());
        }
        for arrived in self.forwarded_arrivals.drain(..) {
            self.metrics.fanout_delay.record(sent_at.saturating_duration_since(arrived).as_secs_f64());
        }
    }

    /// The next command for another shard: `(shard index, command)`.
    pub fn poll_shard_command(&mut self) -> Option<(usize, Command)> {
        self.to_shards.pop_front()
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The client's ICE-TCP connection from `remote` closed: nothing more comes from it, and
    /// what is sent to it is dropped until ICE picks another path.
    pub fn handle_path_closed(&mut self, remote: Remote) {
        self.demux.forget(remote);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let periodic = self.next_speaker_report.min(self.next_limits_report).min(self.next_layers_check);
        let periodic = self.relay.nack_at.map_or(periodic, |at| at.min(periodic));
        let periodic = self.next_mix_tick().map_or(periodic, |at| at.min(periodic));
        Some(self.timers.first().map_or(periodic, |(at, _)| (*at).min(periodic)))
    }

    /// A command from the control plane or another shard.
    pub fn handle_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::PublisherOffer { conn, owner, sdp, tracks, reply } => {
                let _ = reply.send(self.publisher_offer(conn, owner, sdp, tracks, now));
            }
            Command::AddDownTrack { conn, owner, spec, reply } => {
                let _ = reply.send(self.add_down_track(conn, owner, *spec, now));
            }
            Command::RemoveDownTrack { conn, key, reply } => {
                let _ = reply.send(self.remove_down_track(conn, key, now));
            }
            Command::SubscriberOffer { conn, ice_restart, reply } => {
                let _ = reply.send(self.subscriber_offer(conn, ice_restart, now));
            }
            Command::SubscriberAnswer { conn, sdp, reply } => {
                let _ = reply.send(self.subscriber_answer(conn, sdp, now));
            }
            Command::EgressOffer { conn, owner, sdp, tracks, reply } => {
                let _ = reply.send(self.egress_offer(conn, owner, sdp, tracks, now));
            }
            Command::RemoteCandidate { conn, candidate, reply } => {
                let _ = reply.send(self.remote_candidate(conn, candidate));
            }
            Command::SetSubscription { conn, key, settings } => self.set_subscription(conn, key, &settings, now),
            Command::SetMuted { key, muted } => self.set_muted(key, muted),
            Command::SetAmongLoudest { key, among } => self.set_among_loudest(key, among),
            Command::SetSpeaking { participant, speaking } => self.set_speaking(participant, speaking),
            Command::SendData { conn, text, payload } => self.send_data(conn, text, payload, now),
            Command::Close { conn } => self.close_conn(conn, now),
            Command::Downstream { key, shard, attach } => self.set_downstream(key, shard, attach, now),
            Command::LayersFlowing { key, layers } => self.on_layers_flowing(key, &layers, now),
            Command::LayerDemand { key, shard, wanted, used } => {
                self.on_layer_demand(key, DemandFrom::Shard(shard), Demand { wanted, used }, now);
            }
            Command::KeyframeRequest { key, layer } => self.request_keyframe(key, layer, now),
            Command::Forward(packet) => self.forward_local(&packet, now),
            Command::OpenLink(spec) => self.open_link(&spec),
            Command::CloseLink(link) => self.close_link(link, now),
            Command::AddRelayTrack { link, spec, reply } => {
                let _ = reply.send(self.add_relay_track(link, *spec));
            }
            Command::RemoveRelayTrack { key } => self.remove_relay_track(key),
            Command::AddRelayOut { key, link, dest, ssrcs, reply } => {
                let _ = reply.send(self.add_relay_out(key, link, dest, ssrcs, now));
            }
            Command::RemoveRelayOut { key, link } => self.remove_relay_out(key, link, now),
            Command::SetRelayLayers { key, link, used, wanted } => self.set_relay_layers(key, link, used, wanted, now),
            Command::RelayLayersActive { key, layers } => self.relay_layers_active(key, layers, now),
            Command::AvailableLayers { key, layers } => self.on_available_layers(key, layers, now),
            Command::AddMix { reply } => {
                let _ = reply.send(self.add_mix(now));
            }
            Command::RemoveMix { key } => self.remove_mix(key, now),
            Command::AddMixInput { mix, input, speaker, reply } => {
                let _ = reply.send(self.add_mix_input(mix, input, speaker, now));
            }
            Command::RemoveMixInput { mix, input } => self.remove_mix_input(mix, input, now),
        }
    }

    fn emit(&mut self, event: MediaEvent) {
        self.events.push_back(event);
    }

    /// Sends a command to another shard (or handles it here when it is this shard).
    fn send_to_shard(&mut self, shard: usize, command: Command, now: Instant) {
        if shard == self.index {
            self.handle_command(command, now);
        } else {
            self.to_shards.push_back((shard, command));
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod tests;
