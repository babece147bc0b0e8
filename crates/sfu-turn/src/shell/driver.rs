//! The task that owns the core: reads the UDP listener and the input queue, keeps the clock,
//! sends what the core queued, opens and closes relay sockets, and copies the counters to the
//! metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::ShellConfig;
use super::inputs::{Input, ShellCounters};
use super::relay_sockets::{self, RelaySocket};
use crate::server::{AllocId, ClientAddr, Event, Transmit, Transport, TurnCore};
use crate::stats::TurnStats;

/// Largest datagram read on the listener.
const MAX_DATAGRAM: usize = 2048;
/// How often the counters reach the metrics.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

pub struct Driver {
    core: TurnCore,
    udp: Option<UdpSocket>,
    relay_ip: std::net::IpAddr,
    relay_ports: RangeInclusive<u16>,
    relays: HashMap<AllocId, RelaySocket>,
    streams: HashMap<ClientAddr, mpsc::Sender<Vec<u8>>>,
    /// Given to relay sockets' readers.
    inputs_tx: mpsc::Sender<Input>,
    inputs: mpsc::Receiver<Input>,
    stats: Arc<parking_lot::Mutex<TurnStats>>,
    counters: Arc<ShellCounters>,
}

impl Driver {
    pub fn new(
        core: TurnCore,
        udp: Option<UdpSocket>,
        config: &ShellConfig,
        inputs_tx: mpsc::Sender<Input>,
        inputs: mpsc::Receiver<Input>,
        stats: Arc<parking_lot::Mutex<TurnStats>>,
        counters: Arc<ShellCounters>,
    ) -> Self {
        Driver {
            core,
            udp,
            relay_ip: config.bind,
            relay_ports: config.relay_ports.clone(),
            relays: HashMap::new(),
            streams: HashMap::new(),
            inputs_tx,
            inputs,
            stats,
            counters,
        }
    }

    pub async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut metrics_tick = tokio::time::interval(METRICS_INTERVAL);
        loop {
            self.flush();
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                read = recv(self.udp.as_ref(), &mut buf) => {
                    if let Ok((n, from)) = read {
                        let client = ClientAddr { transport: Transport::Udp, addr: from };
                        self.core.handle_client(Instant::now(), client, &buf[..n]);
                    }
                }
                input = self.inputs.recv() => match input {
                    Some(input) => self.handle_input(input),
                    None => return,
                },
                _ = sleep_until(deadline) => self.core.handle_timeout(Instant::now()),
                _ = metrics_tick.tick() => self.export_metrics(),
            }
        }
    }

    fn handle_input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::StreamOpened { client, out } => {
                self.streams.insert(client, out);
            }
            Input::StreamFrame { client, frame } => self.core.handle_client(now, client, &frame),
            Input::StreamClosed { client } => {
                self.streams.remove(&client);
                self.core.handle_client_closed(now, client);
            }
            Input::Peer { alloc, from, data } => self.core.handle_peer(now, alloc, from, &data),
        }
    }

    /// Sends everything the core queued and does what it asked.
    fn flush(&mut self) {
        loop {
            while let Some(t) = self.core.poll_transmit() {
                self.send(t);
            }
            let Some(event) = self.core.poll_event() else { break };
            match event {
                Event::OpenRelay(alloc) => {
                    let opened = relay_sockets::open(
                        alloc,
                        self.relay_ip,
                        &self.relay_ports,
                        self.inputs_tx.clone(),
                        self.counters.clone(),
                    );
                    let local = match opened {
                        Ok(relay) => {
                            let local = relay.socket.local_addr().map_err(|_| ());
                            self.relays.insert(alloc, relay);
                            local
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "no relay socket for a TURN allocation");
                            Err(())
                        }
                    };
                    self.core.handle_relay_opened(Instant::now(), alloc, local);
                }
                Event::CloseRelay(alloc) => {
                    self.relays.remove(&alloc);
                }
            }
        }
        let stats = self.core.stats();
        let mut shared = self.stats.lock();
        if *shared != *stats {
            *shared = stats.clone();
        }
    }

    fn send(&mut self, t: Transmit) {
        let sent = match t {
            Transmit::ToClient { client, data } => match client.transport {
                Transport::Udp => self.udp.as_ref().is_some_and(|s| s.try_send_to(&data, client.addr).is_ok()),
                Transport::Tcp | Transport::Tls => {
                    self.streams.get(&client).is_some_and(|out| out.try_send(data).is_ok())
                }
            },
            Transmit::ToPeer { alloc, to, data } => {
                self.relays.get(&alloc).is_some_and(|r| r.socket.try_send_to(&data, to).is_ok())
            }
        };
        if !sent {
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn export_metrics(&self) {
        let s = self.core.stats();
        metrics::gauge!("sfu_turn_allocations").set(s.allocations as f64);
        metrics::counter!("sfu_turn_allocations_total").absolute(s.allocations_total);
        metrics::counter!("sfu_turn_challenges_total").absolute(s.challenges);
        metrics::counter!("sfu_turn_auth_failures_total", "reason" => "expired").absolute(s.auth_expired);
        metrics::counter!("sfu_turn_auth_failures_total", "reason" => "rejected").absolute(s.auth_rejected);
        metrics::counter!("sfu_turn_stale_nonces_total").absolute(s.stale_nonces);
        metrics::counter!("sfu_turn_refused_peers_total").absolute(s.refused_peers);
        metrics::counter!("sfu_turn_quota_refusals_total").absolute(s.quota_refusals);
        metrics::counter!("sfu_turn_relayed_bytes_total", "direction" => "to_peer").absolute(s.bytes_to_peers);
        metrics::counter!("sfu_turn_relayed_bytes_total", "direction" => "to_client").absolute(s.bytes_to_clients);
        let c = &self.counters;
        let drops = [
            ("no_permission", s.dropped_no_permission),
            ("no_allocation", s.dropped_no_allocation),
            ("malformed", s.dropped_malformed),
            ("queue_full", c.queue_full.load(Ordering::Relaxed)),
        ];
        for (reason, n) in drops {
            metrics::counter!("sfu_turn_dropped_total", "reason" => reason).absolute(n);
        }
        let closed = [
            ("refused", c.streams_refused.load(Ordering::Relaxed)),
            ("bad_input", c.streams_bad_input.load(Ordering::Relaxed)),
            ("timed_out", c.streams_timed_out.load(Ordering::Relaxed)),
        ];
        for (reason, n) in closed {
            metrics::counter!("sfu_turn_connections_closed_total", "reason" => reason).absolute(n);
        }
    }
}

async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
