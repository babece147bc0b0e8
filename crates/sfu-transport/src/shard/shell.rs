//! The I/O around one [`ShardCore`]: a thread with its UDP socket, the command queues between
//! shards, and the clock. Everything here is plumbing; every decision is the core's.
//!
//! One wakeup: datagrams (each stamped with its own arrival instant), commands or a deadline go
//! into the core; then the core settles (drains the connections they touched) and its outputs
//! leave: datagrams to the kernel with `sendmmsg`, commands to the other shards' queues, events
//! to the control plane. Then the loop sleeps until the next input or the core's deadline.
//!
//! With ICE-TCP on, frames from the clients' TCP connections are datagrams too (`tcp::shard_io`
//! reads them on tasks of this thread), and what the core sends to a TCP client is framed into
//! that connection's queue instead of the UDP batch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

use super::command::Command;
use super::core::BACKLOG_SAMPLE_INTERVAL;
use super::core::{ShardCore, ShardSettings};
use crate::api::MediaEvent;
use crate::metrics::ShardMetrics;
use crate::remote::Remote;
use crate::send_batch::MAX_PER_CALL;
use crate::tcp::TcpHandoff;
use crate::tcp::shard_io::{ShardTcp, TcpEvent, TcpInput};

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

/// The plane's handle on a running shard.
pub(crate) struct ShardHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub _thread: Arc<std::thread::JoinHandle<()>>,
}

/// How a shard talks to the rest of the plane.
pub(crate) struct ShardChannels {
    /// Commands for this shard, from the plane and from other shards.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Every shard's command sender, this one's included, by index.
    pub peers: Vec<PeerShard>,
    /// Media events for the signaling side.
    pub events: mpsc::UnboundedSender<MediaEvent>,
    /// ICE-TCP connections from the node's listener, when ICE-TCP is on.
    pub tcp: Option<mpsc::UnboundedReceiver<TcpHandoff>>,
}

/// How often the kernel's view of the shard's socket (drops, queued bytes) is read.
const SOCKET_STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Datagrams (or commands) read per wakeup before the core settles.
const RECV_BATCH: usize = 64;

/// A shard thread: its socket, its queues, its clock, and the core they drive.
pub(crate) struct ShardShell {
    core: ShardCore,
    index: usize,
    socket: std::net::UdpSocket,
    commands: mpsc::UnboundedReceiver<Command>,
    peers: Vec<PeerShard>,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// The clients' ICE-TCP connections on this shard (None when ICE-TCP is off).
    tcp: Option<ShardTcp>,
    metrics: ShardMetrics,
}

impl ShardShell {
    pub fn new(settings: ShardSettings, socket: std::net::UdpSocket, channels: ShardChannels) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let index = settings.index;
        let ShardChannels { commands, peers, events, tcp } = channels;
        Ok(Self {
            core: ShardCore::new(settings, Instant::now(), SystemTime::now()),
            index,
            socket,
            commands,
            peers,
            events,
            tcp: tcp.map(|handoffs| ShardTcp::new(index, handoffs)),
            metrics: ShardMetrics::new(index),
        })
    }

    pub fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(shard = self.index, error = %e, "cannot start shard runtime");
                return;
            }
        };
        // A local set: the ICE-TCP connections' tasks run on this thread, beside the loop.
        tokio::task::LocalSet::new().block_on(&runtime, self.event_loop());
    }

    async fn event_loop(mut self) {
        let socket = match self.socket.try_clone().and_then(tokio::net::UdpSocket::from_std) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(shard = self.index, error = %e, "cannot register shard socket");
                return;
            }
        };
        let mut buf = vec![0u8; crate::MAX_DATAGRAM_LEN];
        let mut stats_tick = tokio::time::interval(SOCKET_STATS_INTERVAL);
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog_tick = tokio::time::interval(BACKLOG_SAMPLE_INTERVAL);
        backlog_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut woke = Instant::now();
        loop {
            while self.core.settle(Instant::now()) {
                self.send_early();
            }
            self.send_outputs();
            crate::load::add_busy(woke.elapsed());
            let tcp_deadline = self.tcp.as_ref().and_then(ShardTcp::poll_timeout);
            let deadline = [self.core.poll_timeout(), tcp_deadline].into_iter().flatten().min();
            let tcp = &mut self.tcp;
            let tcp_event = async {
                match tcp.as_mut() {
                    Some(tcp) => tcp.next().await,
                    None => std::future::pending::<TcpEvent>().await,
                }
            };
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
                    woke = Instant::now();
                    let Some(command) = command else { return };
                    let now = woke;
                    self.take_command(command, now);
                    // Commands come in bursts (one per forwarded packet from other shards).
                    for _ in 0..RECV_BATCH {
                        match self.commands.try_recv() {
                            Ok(command) => self.take_command(command, now),
                            Err(_) => break,
                        }
                    }
                }
                received = socket.recv_from(&mut buf) => {
                    woke = Instant::now();
                    // Each datagram gets its own arrival instant: transport-cc feedback to
                    // publishers reports these, and stamping a whole batch with one instant would
                    // read to the browser's estimator as bursty delay.
                    if let Ok((len, from)) = received {
                        self.take_datagram(&buf[..len], from, Instant::now());
                    }
                    for _ in 0..RECV_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((len, from)) => self.take_datagram(&buf[..len], from, Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {
                    woke = Instant::now();
                    self.take_timeout(woke);
                }
                event = tcp_event => {
                    woke = Instant::now();
                    self.take_tcp(event);
                    // Frames come in bursts, as datagrams do.
                    for _ in 0..RECV_BATCH {
                        match self.tcp.as_mut().and_then(ShardTcp::try_next) {
                            Some(event) => self.take_tcp(event),
                            None => break,
                        }
                    }
                }
                _ = backlog_tick.tick() => {
                    woke = Instant::now();
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
                    if let Some(backlog) = crate::udp_stats::receive_backlog(fd) {
                        self.core.handle_receive_backlog(backlog, Instant::now());
                    }
                }
                _ = stats_tick.tick() => {
                    woke = Instant::now();
                    if let Some(stats) = crate::udp_stats::socket_stats(port) {
                        self.metrics.receive_drops.absolute(stats.drops);
                        self.metrics.receive_queue.set(stats.queued_bytes as f64);
                    }
                }
            }
        }
    }

    fn take_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        self.core.handle_datagram(datagram, from, now);
        self.send_early();
    }

    fn take_tcp(&mut self, event: TcpEvent) {
        let Some(tcp) = self.tcp.as_mut() else { return };
        match event {
            TcpEvent::Adopt(handoff) => tcp.adopt(handoff),
            TcpEvent::Input(TcpInput::Frame { remote, frame, at }) => {
                if tcp.take_frame(remote, &frame, at) {
                    self.core.handle_datagram(&frame, Remote::tcp(remote), at);
                    self.send_early();
                } else {
                    self.core.handle_path_closed(Remote::tcp(remote));
                }
            }
            TcpEvent::Input(TcpInput::Closed { remote, reason }) => {
                if tcp.close(remote, reason) {
                    self.core.handle_path_closed(Remote::tcp(remote));
                }
            }
        }
    }

    /// A deadline passed: the core's, or an ICE-TCP connection's (each acts only on what is due).
    fn take_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        if let Some(tcp) = self.tcp.as_mut() {
            for remote in tcp.handle_timeout(now) {
                self.core.handle_path_closed(Remote::tcp(remote));
            }
        }
    }

    fn take_command(&mut self, command: Command, now: Instant) {
        if matches!(command, Command::Forward(_))
            && let Some(me) = self.peers.get(self.index)
        {
            me.forward_backlog.fetch_sub(1, Ordering::Relaxed);
        }
        self.core.handle_command(command, now);
        self.send_early();
    }

    /// Mid-wakeup (after an input, or when the core's settling pauses): a fan-out's first copies
    /// leave once a call's worth is queued, and other shards get their packets without waiting
    /// for the rest of this wakeup's work.
    fn send_early(&mut self) {
        if self.core.transmits().len() >= MAX_PER_CALL {
            self.send_transmits();
        }
        self.send_commands();
    }

    fn send_outputs(&mut self) {
        self.send_transmits();
        self.send_commands();
        while let Some(event) = self.core.poll_event() {
            let _ = self.events.send(event);
        }
    }

    fn send_transmits(&mut self) {
        let batch = self.core.transmits();
        if !batch.is_empty() {
            let tcp = &mut self.tcp;
            let flushed = batch.flush(&self.socket, |to, datagram| {
                if let Some(tcp) = tcp.as_mut() {
                    tcp.send(to, datagram);
                }
            });
            if flushed.failed > 0 {
                self.metrics.send_failures.increment(flushed.failed as u64);
            }
        }
        self.core.handle_transmitted(Instant::now());
    }

    fn send_commands(&mut self) {
        while let Some((shard, command)) = self.core.poll_shard_command() {
            let Some(peer) = self.peers.get(shard) else { continue };
            if matches!(command, Command::Forward(_)) {
                // Bounded: a shard that cannot keep up loses packets, not memory.
                if peer.forward_backlog.load(Ordering::Relaxed) >= FORWARD_BACKLOG_LIMIT {
                    self.metrics.forward_queue_drops.increment(1);
                    continue;
                }
                peer.forward_backlog.fetch_add(1, Ordering::Relaxed);
            }
            let _ = peer.commands.send(command);
        }
    }
}
