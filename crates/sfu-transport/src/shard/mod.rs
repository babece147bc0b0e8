//! One worker shard: a thread owning a UDP socket, the peer connections multiplexed on it,
//! their timers, and the forwarding state of the tracks published or subscribed on it.

mod conn;
mod consent;
mod demux;
mod down_track;
mod dynacast;
mod egress;
mod ingress;
mod overload;
mod sdp_info;
mod speakers;
mod uplink;

use bytes::{Bytes, BytesMut};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu_proto::{IceCandidate, ParticipantId, SubscriptionSettings, TrackDescription};
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

use crate::api::{DownTrackSpec, MediaEvent, PublisherAnswer, SubscriberOffer};
use crate::ids::IdMap;
use crate::metrics::ShardMetrics;
use crate::rejection::IngressRejection;
use crate::send_batch::SendBatch;
use crate::{ConnId, MediaError, TrackKey};
use conn::Conn;
use consent::ConsentCheck;
use demux::{Demux, Route};
use ingress::{MediaPacket, Published};

type Reply<T> = oneshot::Sender<Result<T, MediaError>>;

/// Work for a shard, from the control plane or from another shard.
pub(crate) enum Command {
    PublisherOffer {
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<TrackDescription>,
        reply: Reply<PublisherAnswer>,
    },
    AddDownTrack {
        conn: ConnId,
        owner: ParticipantId,
        spec: Box<DownTrackSpec>,
        reply: Reply<()>,
    },
    RemoveDownTrack {
        conn: ConnId,
        key: TrackKey,
        reply: Reply<()>,
    },
    SubscriberOffer {
        conn: ConnId,
        ice_restart: bool,
        reply: Reply<SubscriberOffer>,
    },
    SubscriberAnswer {
        conn: ConnId,
        sdp: String,
        reply: Reply<()>,
    },
    EgressOffer {
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
        reply: Reply<String>,
    },
    RemoteCandidate {
        conn: ConnId,
        candidate: IceCandidate,
        reply: Reply<()>,
    },
    SetSubscription {
        conn: ConnId,
        key: TrackKey,
        settings: SubscriptionSettings,
    },
    SetMuted {
        key: TrackKey,
        muted: bool,
    },
    /// The participant started or stopped being one of its room's active speakers.
    SetSpeaking {
        participant: ParticipantId,
        speaking: bool,
    },
    SendData {
        conn: ConnId,
        text: bool,
        payload: Bytes,
    },
    Close {
        conn: ConnId,
    },
    /// From a subscriber's shard to the publisher's: start/stop sending this track's packets.
    Downstream {
        key: TrackKey,
        shard: usize,
        attach: bool,
    },
    /// From the publisher's shard to one that just attached: the layers the publisher sends.
    LayersFlowing {
        key: TrackKey,
        layers: Vec<u8>,
    },
    /// From a subscriber's shard to the publisher's: the highest layer of the track that
    /// subscribers on `shard` ask for (`None`: none of them wants it any more).
    LayerDemand {
        key: TrackKey,
        shard: usize,
        wanted: Option<u8>,
    },
    /// From a subscriber's shard to the publisher's: a keyframe is wanted on this layer.
    KeyframeRequest {
        key: TrackKey,
        layer: u8,
    },
    /// From the publisher's shard: a packet for the subscribers living here.
    Forward(Arc<MediaPacket>),
}

/// Another shard as this one sees it: its command queue, and how many forwarded packets wait in
/// that queue (the sending shards add, the receiving shard subtracts).
#[derive(Clone)]
pub(crate) struct PeerShard {
    pub commands: mpsc::UnboundedSender<Command>,
    pub forward_backlog: Arc<AtomicUsize>,
}

/// Forwarded packets allowed to wait in one shard's queue. Past it, a shard that cannot keep up
/// gets no more packets from the others (counted in `sfu_forward_queue_drops_total`) instead of
/// a queue, and the server's memory, growing without end: about 10 MB of 1200-byte packets,
/// or a few tens of milliseconds of a saturated shard's work.
pub(crate) const FORWARD_BACKLOG_LIMIT: usize = 8192;

pub(crate) struct ShardHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub _thread: Arc<std::thread::JoinHandle<()>>,
}

pub(crate) struct Shard {
    index: usize,
    socket: Option<std::net::UdpSocket>,
    announce: SocketAddr,
    /// Subscriber connections negotiate transport-cc and estimate their bandwidth.
    estimate_bandwidth: bool,
    /// Publishers are told which simulcast layers anyone wants.
    dynacast: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    peers: Vec<PeerShard>,
    events: mpsc::UnboundedSender<MediaEvent>,
    conns: IdMap<ConnId, Conn>,
    /// Which connection each datagram belongs to.
    demux: Demux,
    /// Tracks published by connections on this shard.
    published: IdMap<TrackKey, Published>,
    /// Each track connections on this shard subscribe to (wherever it is published): who,
    /// its layers' bitrates here, its recent payloads.
    fanouts: IdMap<TrackKey, egress::Fanout>,
    /// The highest layer of each track this shard's subscribers ask for, as last told to the
    /// track's publisher shard.
    layer_demand: IdMap<TrackKey, u8>,
    /// Participants (of any room) who are speaking now: their video goes first.
    speaking: HashSet<ParticipantId>,
    timers: BTreeSet<(Instant, ConnId)>,
    dirty: Vec<ConnId>,
    /// Datagrams to send at the end of this wakeup, or sooner once a `sendmmsg` call's worth
    /// is queued.
    batch: SendBatch,
    /// The packet each forwarded copy is built in before it is marshalled into `batch`: reused,
    /// so stamping the transport-cc extension allocates nothing per copy.
    outgoing: rtc::rtp::Packet,
    /// The shard socket's descriptor, for sending the batch from anywhere in the loop.
    send_fd: Option<std::os::fd::RawFd>,
    /// When each published packet with copies in `batch` was read from a socket (this shard's
    /// or another's): the fan-out delay ends when the batch is handed to the kernel.
    forwarded_arrivals: Vec<Instant>,
    /// The same for each packet with copies in `batch` now: their delay ends at the next send.
    queued_copies: Vec<Instant>,
    next_track_serial: u64,
    /// How many video layers the shard sheds because it cannot keep up.
    overload: sfu_core::OverloadGuard,
    metrics: ShardMetrics,
}

/// How often the kernel's view of the shard's socket (drops, queued bytes) is read.
const SOCKET_STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Datagrams read per wakeup before the connections they touched are drained.
const RECV_BATCH: usize = 64;

/// How a shard talks to the rest of the plane.
pub(crate) struct ShardChannels {
    /// Commands for this shard, from the plane and from other shards.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Every shard's command sender, this one's included, by index.
    pub peers: Vec<PeerShard>,
    /// Media events for the signaling side.
    pub events: mpsc::UnboundedSender<MediaEvent>,
}

impl Shard {
    pub fn new(
        index: usize,
        socket: std::net::UdpSocket,
        announce: SocketAddr,
        estimate_bandwidth: bool,
        dynacast: bool,
        channels: ShardChannels,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let ShardChannels { commands, peers, events } = channels;
        Ok(Self {
            index,
            socket: Some(socket),
            announce,
            estimate_bandwidth,
            dynacast,
            commands,
            peers,
            events,
            conns: IdMap::default(),
            demux: Demux::default(),
            published: IdMap::default(),
            fanouts: IdMap::default(),
            layer_demand: IdMap::default(),
            speaking: HashSet::new(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            batch: SendBatch::default(),
            outgoing: rtc::rtp::Packet::default(),
            send_fd: None,
            forwarded_arrivals: Vec::new(),
            queued_copies: Vec::new(),
            next_track_serial: 1,
            overload: sfu_core::OverloadGuard::new(),
            metrics: ShardMetrics::new(index),
        })
    }

    pub fn run(mut self) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(shard = self.index, error = %e, "cannot start shard runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let Some(std_socket) = self.socket.take() else { return };
            let socket = match tokio::net::UdpSocket::from_std(std_socket) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(shard = self.index, error = %e, "cannot register shard socket");
                    return;
                }
            };
            self.event_loop(socket).await;
        });
    }

    async fn event_loop(&mut self, socket: tokio::net::UdpSocket) {
        let mut buf = vec![0u8; 2048];
        let mut speaker_tick = tokio::time::interval(sfu_core::SPEAKER_REPORT_INTERVAL);
        speaker_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats_tick = tokio::time::interval(SOCKET_STATS_INTERVAL);
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog_tick = tokio::time::interval(overload::BACKLOG_SAMPLE_INTERVAL);
        backlog_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        // `socket` outlives the loop, and with it the descriptor.
        self.send_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&socket));
        loop {
            self.flush();
            let deadline = self.timers.first().map(|(at, _)| *at);
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // Not biased: under fan-out, commands from other shards never stop coming, and a
            // loop that always served them first would let the socket buffer overflow (losing the
            // clients' STUN keepalives along with media).
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    let now = Instant::now();
                    self.handle_command(command, now);
                    // Commands come in bursts (one per forwarded packet from other shards).
                    for _ in 0..RECV_BATCH {
                        match self.commands.try_recv() {
                            Ok(command) => self.handle_command(command, now),
                            Err(_) => break,
                        }
                    }
                }
                received = socket.recv_from(&mut buf) => {
                    // Each datagram gets its own arrival instant: transport-cc feedback to
                    // publishers reports these, and stamping a whole batch with one instant would
                    // read to the browser's estimator as bursty delay.
                    if let Ok((len, from)) = received {
                        self.handle_datagram(&buf[..len], from, Instant::now());
                    }
                    for _ in 0..RECV_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((len, from)) => self.handle_datagram(&buf[..len], from, Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => self.handle_timeouts(Instant::now()),
                _ = speaker_tick.tick() => self.report_audio_levels(),
                _ = backlog_tick.tick() => self.check_overload(Instant::now()),
                _ = stats_tick.tick() => {
                    if let Some(stats) = crate::udp_stats::socket_stats(port) {
                        self.metrics.receive_drops.absolute(stats.drops);
                        self.metrics.receive_queue.set(stats.queued_bytes as f64);
                    }
                    let hit = self.demux.limits_hit();
                    self.metrics.limit_hit(crate::metrics::IngressLimit::Paths).absolute(hit.paths);
                    self.metrics.limit_hit(crate::metrics::IngressLimit::PendingChecks).absolute(hit.pending_checks);
                }
            }
        }
    }

    fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        let (conn_id, validated) = match self.demux.route(datagram, from) {
            Route::Validated(id) => (id, true),
            // STUN from an address ICE has not validated: only the agent may see it.
            Route::Unvalidated(id) => (id, false),
            Route::Unroutable => {
                self.metrics.unroutable_datagrams.increment(1);
                return;
            }
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        if validated
            && egress::is_rtcp(datagram)
            && let Some(inbound) = conn.inbound_rtcp.as_mut()
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
                    conn.inbound_rtcp = None;
                }
            }
        }
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                // The stack matches this against its host candidate, which names the announced
                // address: with a wildcard bind or behind a 1:1 NAT the socket's own differs.
                local_addr: self.announce,
                peer_addr: from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: BytesMut::from(datagram),
        };
        let publisher = conn.direction == crate::Direction::Ingress;
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

    /// Something authenticated came from the client of `id` (see `consent`).
    fn on_heard(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.consent.on_heard(now) {
            self.metrics.consent_revivals.increment(1);
            tracing::info!(conn = id.0, participant = %conn.owner, "client heard from again after its consent lapsed");
            if std::mem::take(&mut conn.reconnect_on_word) {
                self.on_connected(id, now);
            } else {
                // Its consent deadline is back.
                self.mark_dirty(id);
            }
        }
    }

    /// The consent deadline of `id` passed: if nothing was heard for the whole timeout, the
    /// client is gone for now.
    fn on_consent_timeout(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.consent.on_timeout(now) != ConsentCheck::Lapsed {
            return;
        }
        self.metrics.consent_lapses.increment(1);
        tracing::info!(conn = id.0, participant = %conn.owner, direction = ?conn.direction,
            "nothing heard from the client for {:?}: consent lapsed", consent::CONSENT_TIMEOUT);
        conn.reconnect_on_word = conn.connected;
        self.on_disconnected(id);
    }

    fn handle_timeouts(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.deadline = None;
                let _ = conn.pc.handle_timeout(now);
                self.on_bandwidth_timeout(id, now);
                self.on_sender_report_timeout(id, now);
                self.on_dynacast_timeout(id, now);
                self.on_uplink_nack_timeout(id, now);
                self.on_consent_timeout(id, now);
                self.mark_dirty(id);
            }
        }
    }

    pub(crate) fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// After work done outside the connection's stack (its RTCP read here, an allocation): the
    /// stack has nothing new to write, so a drain is needed only if the estimator now wants a
    /// timer sooner than the one armed. A timer that fires early finds nothing due.
    pub(crate) fn rearm_if_sooner(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else { return };
        let due = conn.bwe.as_ref().and_then(|bwe| bwe.poll_timeout());
        if due.is_some_and(|due| conn.deadline.is_none_or(|armed| due < armed)) {
            self.mark_dirty(id);
        }
    }

    /// Drains every connection touched since the last flush: writes go to the socket, events and
    /// application messages are handled (which may touch more connections), timers are re-armed.
    fn flush(&mut self) {
        let now = Instant::now();
        let mut rounds = 0;
        while !self.dirty.is_empty() && rounds < 16 {
            rounds += 1;
            for id in std::mem::take(&mut self.dirty) {
                self.drain(id, now);
            }
        }
        self.send_queued();
    }

    /// Hands the queued datagrams to the kernel: the copies of each packet in `queued_copies`
    /// leave now (one delay sample per packet and call, not per copy: a sample costs about as
    /// much as encrypting a copy), and
    /// every packet in `forwarded_arrivals` has all its copies sent by now (some perhaps by an
    /// earlier call), so its fan-out delay ends here.
    pub(crate) fn send_queued(&mut self) {
        let Some(fd) = self.send_fd else { return };
        if !self.batch.is_empty() {
            let flushed = self.batch.flush(&fd);
            if flushed.failed > 0 {
                self.metrics.send_failures.increment(flushed.failed as u64);
            }
        }
        if self.queued_copies.is_empty() && self.forwarded_arrivals.is_empty() {
            return;
        }
        let sent_at = Instant::now();
        for arrived in self.queued_copies.drain(..) {
            self.metrics.forward_delay.record(sent_at.saturating_duration_since(arrived).as_secs_f64());
        }
        for arrived in self.forwarded_arrivals.drain(..) {
            self.metrics.fanout_delay.record(sent_at.saturating_duration_since(arrived).as_secs_f64());
        }
    }

    fn drain(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.dirty = false;
        let mut events = Vec::new();
        let mut reads = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(out) = conn.pc.poll_write() {
                progressed = true;
                let peer = out.transport.peer_addr;
                if crate::stun::is_stun(&out.message) {
                    self.demux.on_sent(id, peer, &out.message);
                    // The agent answers only checks that passed its integrity check: the
                    // address they came from is the client's.
                    if demux::is_binding_success(&out.message) && self.demux.validate(id, peer) {
                        tracing::debug!(conn = id.0, %peer, "client address validated by ICE");
                        self.metrics.validated_paths.increment(1);
                        conn.path_changed = true;
                    }
                } else if let Some(outbound) = conn.outbound.as_mut() {
                    // The stack addresses everything but STUN replies to the selected ICE pair:
                    // media written by the shard follows it there.
                    outbound.dest = Some(peer);
                }
                self.batch.push(peer, out.message.freeze());
            }
            while let Some(event) = conn.pc.poll_event() {
                progressed = true;
                events.push(event);
            }
            while let Some(message) = conn.pc.poll_read() {
                progressed = true;
                reads.push(message);
            }
            if !progressed {
                break;
            }
        }
        if std::mem::take(&mut conn.path_changed)
            && let Some(outbound) = conn.outbound.as_mut()
            && let Some(remote) = conn::selected_remote(&mut conn.pc)
        {
            outbound.dest = Some(remote);
        }
        let deadline = [
            conn.pc.poll_timeout(),
            conn.bwe.as_ref().and_then(|b| b.poll_timeout()),
            conn.dynacast_deadline,
            conn.sender_report_at,
            conn.uplink_nack_at,
            conn.consent.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        if conn.deadline != deadline {
            if let Some(old) = conn.deadline {
                self.timers.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, id));
            }
            conn.deadline = deadline;
        }
        for event in events {
            self.handle_event(id, event, now);
        }
        for message in reads {
            self.handle_message(id, message.message, message.now, now);
        }
    }

    fn handle_command(&mut self, command: Command, now: Instant) {
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
            Command::SetSpeaking { participant, speaking } => self.set_speaking(participant, speaking),
            Command::SendData { conn, text, payload } => self.send_data(conn, text, payload, now),
            Command::Close { conn } => self.close_conn(conn),
            Command::Downstream { key, shard, attach } => self.set_downstream(key, shard, attach, now),
            Command::LayersFlowing { key, layers } => self.on_layers_flowing(key, &layers, now),
            Command::LayerDemand { key, shard, wanted } => self.on_layer_demand(key, shard, wanted, now),
            Command::KeyframeRequest { key, layer } => self.request_keyframe(key, layer, now),
            Command::Forward(packet) => {
                if let Some(me) = self.peers.get(self.index) {
                    me.forward_backlog.fetch_sub(1, Ordering::Relaxed);
                }
                self.forward_local(&packet, now);
            }
        }
    }

    fn remote_candidate(&mut self, id: ConnId, candidate: IceCandidate) -> Result<(), MediaError> {
        let conn = self.conns.get_mut(&id).ok_or(MediaError::NoConnection)?;
        conn.pc.add_remote_candidate(rtc::peer_connection::transport::RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: None,
            url: None,
        })?;
        self.mark_dirty(id);
        Ok(())
    }

    fn send_data(&mut self, id: ConnId, text: bool, payload: Bytes, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Some(channel) = conn.data_channel else { return };
        let Some(mut dc) = conn.pc.data_channel(channel) else { return };
        let result = if text {
            dc.send_text(now, String::from_utf8_lossy(&payload).into_owned())
        } else {
            dc.send(now, BytesMut::from(&payload[..]))
        };
        if let Err(e) = result {
            tracing::debug!(conn = id.0, error = %e, "data channel send failed");
        }
        self.mark_dirty(id);
    }

    /// Routes STUN naming the ICE ufrag of `sdp` (our local description) to `id`. An ICE
    /// restart brings a new ufrag, and the client's checks may come from a new address.
    pub(crate) fn learn_ufrag(&mut self, id: ConnId, sdp: &str) {
        let Some(ufrag) = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")) else { return };
        if self.conns.contains_key(&id) {
            self.demux.set_ufrag(id, ufrag);
        }
    }

    fn emit(&self, event: MediaEvent) {
        let _ = self.events.send(event);
    }

    /// Sends a command to another shard (or handles it here when it is this shard).
    fn send_to_shard(&mut self, shard: usize, command: Command, now: Instant) {
        if shard == self.index {
            self.handle_command(command, now);
        } else if let Some(peer) = self.peers.get(shard) {
            let _ = peer.commands.send(command);
        }
    }

    fn close_conn(&mut self, id: ConnId) {
        let Some(mut conn) = self.conns.remove(&id) else { return };
        let _ = conn.pc.close();
        self.demux.remove(id);
        if let Some(deadline) = conn.deadline {
            self.timers.remove(&(deadline, id));
        }
        let now = Instant::now();
        for key in conn.subscribed {
            self.unlink_subscriber(id, key, now);
        }
        let owned: Vec<TrackKey> = self.published.iter().filter(|(_, p)| p.conn == id).map(|(k, _)| *k).collect();
        for key in owned {
            self.published.remove(&key);
        }
    }
}
