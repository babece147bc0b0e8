//! A virtual network for shard cores and in-memory clients, on one virtual clock.
//!
//! The harness does what the shell and the kernel do, in memory: datagrams go from whoever wrote
//! them to the node at their destination address after a one-way latency (and through a
//! bottleneck, where a test shapes a link), over UDP or, for a client that has only a TCP
//! candidate, as ICE-TCP frames (a shard's TCP address is its own with port [`TCP_PORT`]; the
//! framing and the connections themselves are the shell's and not modelled); commands between
//! shards go by shard index; the
//! control plane's requests are handled at once and their replies read from the oneshot. Time
//! moves only when a test runs the network ([`Net::run_for`], [`Net::run_until`]): from one
//! deadline or arrival to the earliest next one, so seconds of a call take milliseconds and the
//! outcome never depends on how busy the machine is.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

use super::client::{Client, clear_rtp_header};
use crate::api::MediaEvent;
use crate::remote::{Remote, Transport};
use crate::shard::command::{Command, Reply};
use crate::shard::core::{ShardCore, ShardSettings};
use crate::{ConnId, MediaError};

/// One-way delay of every datagram: a LAN-like 10 ms round trip.
pub(crate) const LATENCY: Duration = Duration::from_millis(5);

/// The node's ICE-TCP port, on every shard's address when [`Options::ice_tcp`] is on.
pub(crate) const TCP_PORT: u16 = 7443;

/// The smallest step of the clock, when something asks to run again at once.
const TICK: Duration = Duration::from_micros(100);

pub(crate) type ClientId = usize;

/// What every shard of a test is.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    pub estimate_bandwidth: bool,
    pub dynacast: bool,
    /// Connections also announce a passive TCP candidate (at [`TCP_PORT`]).
    pub ice_tcp: bool,
}

pub(crate) struct ShardNode {
    pub core: ShardCore,
    pub addr: SocketAddr,
    /// Where clients reach it over ICE-TCP, when they can.
    pub tcp_addr: Option<SocketAddr>,
    /// Its index among its node's shards (what its connection ids and track keys carry).
    pub index: usize,
    /// Where its node's shard 0 is in [`Net::shards`]: the shard indices in its commands count
    /// from there.
    pub first: usize,
    /// Everything it told the control plane, with when.
    pub events: Vec<(Instant, MediaEvent)>,
}

struct Datagram {
    from: SocketAddr,
    to: Remote,
    bytes: Bytes,
}

/// A bottleneck in front of one address: a queue drained at `rate_bps`; what would wait longer
/// than `max_queue` is dropped (tail drop), like an access link's buffer.
struct Bottleneck {
    rate_bps: u64,
    max_queue: Duration,
    busy_until: Instant,
}

pub(crate) struct Net {
    pub now: Instant,
    pub shards: Vec<ShardNode>,
    pub clients: Vec<Client>,
    /// Datagrams in flight, by arrival (and order sent).
    wire: BTreeMap<(Instant, u64), Datagram>,
    /// Commands between shards in flight, by delivery.
    commands: BTreeMap<(Instant, u64), (usize, Command)>,
    serial: u64,
    /// How long a command takes from one shard's queue to the other's loop (0: at once).
    pub shard_hop: Duration,
    bottlenecks: Vec<(SocketAddr, Bottleneck)>,
    next_conn: u64,
    /// The next RTP packet to each of these (address, SSRC) is lost on the way.
    losses: Vec<(SocketAddr, u32)>,
    /// What was lost that way: (address, SSRC, sequence number).
    pub lost: Vec<(SocketAddr, u32, u16)>,
    /// Paths that lose a share of what they carry: (from, to, per mille), and the generator
    /// that picks which datagrams (seeded: a run loses the same ones every time).
    path_losses: Vec<(SocketAddr, SocketAddr, u32)>,
    loss_draws: u64,
    /// Datagrams lost on those paths.
    pub path_lost: usize,
    /// Tracks relayed between nodes whose control planes pass the shards' relay events on
    /// (see `relay_glue::RelayGlue`).
    pub relay_glue: Vec<super::relay_glue::RelayGlue>,
}

pub(crate) fn shard_addr(index: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, index as u8 + 1], 7000))
}

fn client_addr(index: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 1, index as u8 + 1], 50_000))
}

impl Net {
    /// One node of `shards` shards.
    pub fn new(shards: usize, options: Options) -> Self {
        Self::nodes(&[shards], options)
    }

    /// Nodes of these many shards each (a cluster: nodes reach each other only through the
    /// network, shards of one node also by command). Shards are numbered across all nodes,
    /// node by node, in [`Net::shards`].
    pub fn nodes(shards_per_node: &[usize], options: Options) -> Self {
        let now = Instant::now();
        let mut shards = Vec::new();
        for &count in shards_per_node {
            let first = shards.len();
            for index in 0..count {
                let flat = first + index;
                let tcp_addr = options.ice_tcp.then(|| SocketAddr::new(shard_addr(flat).ip(), TCP_PORT));
                let settings = ShardSettings {
                    index,
                    announce: shard_addr(flat),
                    tcp_announce: tcp_addr,
                    estimate_bandwidth: options.estimate_bandwidth,
                    dynacast: options.dynacast,
                    shards: count,
                    relay_rtcp_ssrc: 0x5000 + flat as u32,
                };
                shards.push(ShardNode {
                    core: ShardCore::new(settings, now, SystemTime::now()),
                    addr: shard_addr(flat),
                    tcp_addr,
                    index,
                    first,
                    events: Vec::new(),
                });
            }
        }
        Self {
            now,
            shards,
            clients: Vec::new(),
            wire: BTreeMap::new(),
            commands: BTreeMap::new(),
            serial: 0,
            shard_hop: Duration::ZERO,
            bottlenecks: Vec::new(),
            next_conn: 1,
            losses: Vec::new(),
            lost: Vec::new(),
            relay_glue: Vec::new(),
            path_losses: Vec::new(),
            loss_draws: 0x2545_f491_4f6c_dd1d,
            path_lost: 0,
        }
    }

    /// A connection id on `shard`, as the plane allocates them.
    pub fn allocate_conn(&mut self, shard: usize) -> ConnId {
        self.next_conn += 1;
        ConnId::new(self.shards[shard].index, self.next_conn)
    }

    /// A client whose only candidate is of `transport`: a UDP host candidate, or over TCP an
    /// active one, as a browser whose UDP is blocked has.
    pub fn add_client_over(&mut self, role: super::client::Role, transport: Transport) -> ClientId {
        let id = self.clients.len();
        self.clients.push(Client::new(role, client_addr(id), transport, self.now));
        id
    }

    pub fn client(&self, id: ClientId) -> &Client {
        &self.clients[id]
    }

    pub fn client_mut(&mut self, id: ClientId) -> &mut Client {
        &mut self.clients[id]
    }

    pub fn core(&self, shard: usize) -> &ShardCore {
        &self.shards[shard].core
    }

    /// Shapes everything sent to `to` from now on (replacing any earlier shape).
    pub fn set_bottleneck(&mut self, to: SocketAddr, rate_bps: u64, max_queue: Duration) {
        self.bottlenecks.retain(|(addr, _)| *addr != to);
        let shape = Bottleneck { rate_bps, max_queue, busy_until: self.now };
        self.bottlenecks.push((to, shape));
    }

    /// Loses the next RTP packet of stream `ssrc` sent to `to`.
    pub fn lose_next(&mut self, to: SocketAddr, ssrc: u32) {
        self.losses.push((to, ssrc));
    }

    /// Loses `per_mille` of everything sent from `from` to `to` from now on, at random.
    pub fn set_path_loss(&mut self, from: SocketAddr, to: SocketAddr, per_mille: u32) {
        self.path_losses.retain(|(f, t, _)| (*f, *t) != (from, to));
        self.path_losses.push((from, to, per_mille));
    }

    /// Lifts the shape on what is sent to `to` (what is already queued still arrives late).
    pub fn clear_bottleneck(&mut self, to: SocketAddr) {
        self.bottlenecks.retain(|(addr, _)| *addr != to);
    }

    /// A control-plane request: handled by the shard now, its reply read at once (the core
    /// answers in the same call), its consequences (commands to other shards, datagrams) on
    /// their way.
    pub fn ask<T>(&mut self, shard: usize, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, MediaError> {
        let (reply, mut answer) = oneshot::channel();
        self.shards[shard].core.handle_command(make(reply), self.now);
        self.flush();
        answer.try_recv().expect("the core answers a request in the call that handles it")
    }

    /// A control-plane command with no reply.
    pub fn tell(&mut self, shard: usize, command: Command) {
        self.shards[shard].core.handle_command(command, self.now);
        self.flush();
    }

    /// The shell measured shard `shard`'s socket backlog now (it samples every
    /// `BACKLOG_SAMPLE_INTERVAL`).
    pub fn report_backlog(&mut self, shard: usize, bytes: usize) {
        self.shards[shard].core.handle_receive_backlog(bytes, self.now);
        self.flush();
    }

    /// Packets on their way from the publisher's shard to shard `shard`'s subscribers.
    pub fn forwards_in_flight(&self, shard: usize) -> usize {
        self.commands.values().filter(|(to, command)| *to == shard && matches!(command, Command::Forward(_))).count()
    }

    /// The events shard `shard` emitted since `since`.
    pub fn events_since(&self, shard: usize, since: Instant) -> impl Iterator<Item = &MediaEvent> {
        self.shards[shard].events.iter().filter(move |(at, _)| *at >= since).map(|(_, e)| e)
    }

    /// Runs the network for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        self.run_until_instant(end, |_| false);
    }

    /// Runs until `done` holds (checked after every step) and returns the virtual time it took;
    /// panics naming `what` if it does not within `limit`.
    pub fn run_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> Duration {
        let start = self.now;
        if self.run_until_instant(start + limit, &mut done) {
            return self.now - start;
        }
        panic!("not within {limit:?}: {what}");
    }

    fn run_until_instant(&mut self, end: Instant, mut done: impl FnMut(&Net) -> bool) -> bool {
        loop {
            self.step();
            if done(self) {
                return true;
            }
            let next = self.next_wakeup();
            if next > end {
                self.now = end;
                return false;
            }
            self.now = if next > self.now { next } else { self.now + TICK };
        }
    }

    /// The earliest moment anything has to happen.
    fn next_wakeup(&mut self) -> Instant {
        let arrivals = [self.wire.keys().next(), self.commands.keys().next()].into_iter().flatten().map(|(at, _)| *at);
        let cores = self.shards.iter().filter_map(|s| s.core.poll_timeout());
        let mut next = arrivals.chain(cores).min().unwrap_or(self.now + Duration::from_secs(1));
        for client in &mut self.clients {
            if let Some(at) = client.poll_timeout() {
                next = next.min(at);
            }
        }
        next
    }

    /// Everything due at `now`: arrivals, commands, timers; then every output routed.
    fn step(&mut self) {
        let now = self.now;
        while let Some(entry) = self.wire.first_entry().filter(|e| e.key().0 <= now) {
            let datagram = entry.remove();
            self.deliver(datagram);
        }
        while let Some(entry) = self.commands.first_entry().filter(|e| e.key().0 <= now) {
            let (shard, command) = entry.remove();
            self.shards[shard].core.handle_command(command, now);
        }
        for client in &mut self.clients {
            if client.poll_timeout().is_some_and(|at| at <= now) {
                client.handle_timeout(now);
            }
        }
        for shard in &mut self.shards {
            if shard.core.poll_timeout().is_some_and(|at| at <= now) {
                shard.core.handle_timeout(now);
            }
        }
        self.flush();
    }

    fn deliver(&mut self, datagram: Datagram) {
        let Datagram { from, to, bytes } = datagram;
        let at_shard = |s: &&mut ShardNode| match to.transport {
            Transport::Udp => s.addr == to.addr,
            Transport::Tcp => s.tcp_addr == Some(to.addr),
        };
        if let Some(shard) = self.shards.iter_mut().find(at_shard) {
            shard.core.handle_datagram(&bytes, Remote { addr: from, transport: to.transport }, self.now);
        } else if let Some(client) = self.clients.iter_mut().find(|c| c.addr == to.addr && c.transport == to.transport)
        {
            client.handle_datagram(&bytes, from, self.now);
        }
    }

    /// Routes every output until nothing new comes out: each core settles and its transmits,
    /// shard commands and events leave; each client's stack is drained. Commands due at once
    /// are handled in the same pass, as a shard's loop would pick them up right away.
    pub fn flush(&mut self) {
        let now = self.now;
        for _ in 0..64 {
            let mut outputs = Vec::new();
            let mut commands = Vec::new();
            for (flat, shard) in self.shards.iter_mut().enumerate() {
                // Settling pauses whenever outputs are worth taking; the shell takes them and
                // goes on, and so does this.
                loop {
                    let paused = shard.core.settle(now);
                    let transmits = shard.core.transmits().drain_remotes();
                    outputs.extend(transmits.into_iter().map(|(to, bytes)| {
                        let from = match to.transport {
                            Transport::Udp => shard.addr,
                            Transport::Tcp => shard.tcp_addr.expect("TCP only where the shard has a TCP address"),
                        };
                        (from, to, bytes)
                    }));
                    shard.core.handle_transmitted(now);
                    while let Some((index, command)) = shard.core.poll_shard_command() {
                        commands.push((shard.first + index, command));
                    }
                    if !paused {
                        break;
                    }
                }
                while let Some(event) = shard.core.poll_event() {
                    for (to, command) in self.relay_glue.iter().filter_map(|glue| glue.on_event(flat, &event)) {
                        // The control connection between the nodes takes a one-way latency.
                        self.serial += 1;
                        self.commands.insert((now + LATENCY, self.serial), (to, command));
                    }
                    shard.events.push((now, event));
                }
            }
            for client in &mut self.clients {
                let from = client.addr;
                outputs.extend(client.drain(now).into_iter().map(|(to, bytes)| (from, to, bytes)));
            }
            let quiet = commands.is_empty();
            for (from, to, bytes) in outputs {
                self.send(from, to, bytes);
            }
            for (shard, command) in commands {
                self.serial += 1;
                self.commands.insert((now + self.shard_hop, self.serial), (shard, command));
            }
            if self.shard_hop.is_zero() {
                while let Some(entry) = self.commands.first_entry().filter(|e| e.key().0 <= now) {
                    let (shard, command) = entry.remove();
                    self.shards[shard].core.handle_command(command, now);
                }
            }
            if quiet {
                return;
            }
        }
        panic!("shards keep commanding each other at one instant");
    }

    /// Puts a UDP datagram on the wire as if `from` had sent it (any bytes, any address).
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, bytes: Bytes) {
        self.send(from, Remote::udp(to), bytes);
    }

    fn send(&mut self, from: SocketAddr, to: Remote, bytes: Bytes) {
        let (to, remote) = (to.addr, to);
        if let Some(&(_, _, per_mille)) = self.path_losses.iter().find(|(f, t, _)| (*f, *t) == (from, to)) {
            // xorshift64: the same losses on every run.
            self.loss_draws ^= self.loss_draws << 13;
            self.loss_draws ^= self.loss_draws >> 7;
            self.loss_draws ^= self.loss_draws << 17;
            if (self.loss_draws % 1000) < u64::from(per_mille) {
                self.path_lost += 1;
                return;
            }
        }
        if let Some(header) = clear_rtp_header(&bytes, self.now)
            && let Some(i) = self.losses.iter().position(|loss| *loss == (to, header.ssrc))
        {
            self.losses.swap_remove(i);
            self.lost.push((to, header.ssrc, header.seq));
            return;
        }
        let mut at = self.now;
        if let Some((_, shape)) = self.bottlenecks.iter_mut().find(|(addr, _)| *addr == to) {
            let start = shape.busy_until.max(self.now);
            if start - self.now > shape.max_queue {
                return;
            }
            // The link carries the IP and UDP headers too.
            let bits = (bytes.len() as u64 + 28) * 8;
            shape.busy_until = start + Duration::from_nanos(bits * 1_000_000_000 / shape.rate_bps);
            at = shape.busy_until;
        }
        self.serial += 1;
        self.wire.insert((at + LATENCY, self.serial), Datagram { from, to: remote, bytes });
    }
}
