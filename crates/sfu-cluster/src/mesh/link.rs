//! Runs one link after its handshake: seals and writes what is queued for the peer, reads,
//! opens and hands on what it sends, pings every second, and ends at the first bad frame, at
//! silence for [`LINK_IDLE_TIMEOUT`], at a queue overflow, or when the supervisor closes it.
//!
//! The dialer's link is not up until the responder's first sealed frame opens: only then does
//! the dialer know the responder accepted its MAC. So neither side reports `PeerUp` for a
//! handshake the other refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use metrics::{Counter, Gauge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, timeout_at};

use super::ctx::{Ctx, Report};
use super::frame::{FrameDecoder, FrameOpener, FrameSealer};
use super::handshake::{Established, HandshakeError, HandshakeMessage};
use super::messages::PeerMessage;
use super::queue::{self, OverflowSignal, QueueRx};
use super::{AuthFailure, DownReason, LINK_IDLE_TIMEOUT, NodeId, PING_INTERVAL};

/// How a link ended.
pub(super) enum LinkEnd {
    /// It was up (reported to the supervisor) and went down.
    Down(DownReason),
    /// The dialer's link never came up: the responder refused, closed or stayed silent.
    NeverUp(AuthFailure),
}

/// Runs the link until it ends. `confirm_by` (the dialer's handshake deadline) holds back the
/// `Up` report until the peer's first frame opens.
pub(super) async fn run(
    ctx: &Ctx,
    stream: TcpStream,
    decoder: FrameDecoder,
    established: Established,
    label: Arc<str>,
    confirm_by: Option<Instant>,
) -> LinkEnd {
    let generation = ctx.shared.next_generation();
    let node = established.node.clone();
    let (queue, queue_rx, overflow) = queue::channel();
    let (close, closed) = oneshot::channel();
    let opener = FrameOpener::new(&established.keys.ctl_in);
    let sealer = FrameSealer::new(&established.keys.ctl_out);
    let up = Report::Up { generation, established, label: label.clone(), queue, close };
    let is_up = AtomicBool::new(false);
    let mut pending = Some(up);
    if confirm_by.is_none() {
        if ctx.reports.send(pending.take().expect("just set")).await.is_err() {
            return LinkEnd::Down(DownReason::Shutdown);
        }
        is_up.store(true, Ordering::Relaxed);
    }

    let (read_half, write_half) = stream.into_split();
    let (pongs, pongs_rx) = mpsc::channel(8);
    let counters = Counters::new(&label);
    let started = Instant::now();
    let reader = Reader {
        ctx,
        generation,
        node: node.clone(),
        decoder,
        opener,
        pending,
        is_up: &is_up,
        pongs,
        counters: &counters,
        started,
        undecodable: 0,
    };
    let writer = write(write_half, sealer, queue_rx, pongs_rx, &counters, started);
    let end = tokio::select! {
        end = reader.run(read_half, confirm_by) => end,
        reason = writer => finish(&is_up, reason),
        reason = closed => LinkEnd::Down(reason.unwrap_or(DownReason::Closed)),
        () = overflowed(&overflow) => LinkEnd::Down(DownReason::Overflow),
    };
    if let LinkEnd::Down(reason) = &end {
        tracing::info!(peer = %node.escaped(), addr = %label, ?reason, "relay link down");
        let _ = ctx.reports.send(Report::Down { generation, node, reason: reason.clone() }).await;
    }
    end
}

async fn overflowed(signal: &OverflowSignal) {
    signal.overflowed().await
}

fn finish(is_up: &AtomicBool, reason: DownReason) -> LinkEnd {
    if is_up.load(Ordering::Relaxed) {
        return LinkEnd::Down(reason);
    }
    LinkEnd::NeverUp(match reason {
        DownReason::Io(kind) => AuthFailure::Io(kind),
        DownReason::Timeout => AuthFailure::Timeout,
        DownReason::BadFrame(e) => AuthFailure::Frame(e),
        _ => AuthFailure::Closed,
    })
}

/// The link's metrics, labelled once.
struct Counters {
    frames_in: Counter,
    frames_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    rtt: Gauge,
    label: Arc<str>,
}

impl Counters {
    fn new(label: &Arc<str>) -> Self {
        let peer = label.to_string();
        Counters {
            frames_in: metrics::counter!("sfu_relay_control_frames_total", "peer" => peer.clone(), "direction" => "in"),
            frames_out: metrics::counter!("sfu_relay_control_frames_total", "peer" => peer.clone(), "direction" => "out"),
            bytes_in: metrics::counter!("sfu_relay_control_bytes_total", "peer" => peer.clone(), "direction" => "in"),
            bytes_out: metrics::counter!("sfu_relay_control_bytes_total", "peer" => peer.clone(), "direction" => "out"),
            rtt: metrics::gauge!("sfu_relay_rtt_seconds", "peer" => peer),
            label: label.clone(),
        }
    }

    fn frame_error(&self, kind: &'static str) {
        metrics::counter!("sfu_relay_frame_errors_total", "peer" => self.label.to_string(), "kind" => kind)
            .increment(1);
    }
}

fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

struct Reader<'a> {
    ctx: &'a Ctx,
    generation: u64,
    node: NodeId,
    decoder: FrameDecoder,
    opener: FrameOpener,
    /// The dialer's `Up` report, held until the peer's first frame opens.
    pending: Option<Report>,
    is_up: &'a AtomicBool,
    pongs: mpsc::Sender<PeerMessage>,
    counters: &'a Counters,
    started: Instant,
    /// Frames skipped as undecodable; the first is logged as a warning, the rest quieter.
    undecodable: u64,
}

impl Reader<'_> {
    async fn run(mut self, mut read_half: OwnedReadHalf, confirm_by: Option<Instant>) -> LinkEnd {
        let mut buf = vec![0u8; 16 * 1024];
        let mut deadline = confirm_by.unwrap_or_else(|| Instant::now() + LINK_IDLE_TIMEOUT);
        loop {
            loop {
                let body = match self.decoder.pop() {
                    Ok(Some(body)) => body,
                    Ok(None) => break,
                    Err(e) => {
                        self.counters.frame_error("too_long");
                        return self.end(DownReason::BadFrame(e.clone()), AuthFailure::Frame(e));
                    }
                };
                if let Err(end) = self.on_frame(body).await {
                    return end;
                }
                deadline = Instant::now() + LINK_IDLE_TIMEOUT;
            }
            match timeout_at(deadline, read_half.read(&mut buf)).await {
                Err(_) => return self.end(DownReason::Timeout, AuthFailure::Timeout),
                Ok(Ok(0)) => return self.end(DownReason::Closed, AuthFailure::Closed),
                Ok(Ok(n)) => self.decoder.push(&buf[..n]),
                Ok(Err(e)) => return self.end(DownReason::Io(e.kind()), AuthFailure::Io(e.kind())),
            }
        }
    }

    fn end(&self, down: DownReason, never_up: AuthFailure) -> LinkEnd {
        if self.pending.is_none() { LinkEnd::Down(down) } else { LinkEnd::NeverUp(never_up) }
    }

    async fn on_frame(&mut self, body: BytesMut) -> Result<(), LinkEnd> {
        let len = body.len();
        // Before the first frame a refusing responder answers in plain text.
        let maybe_refusal = self.pending.is_some().then(|| body.clone());
        let plaintext = match self.opener.open(body) {
            Ok(plaintext) => plaintext,
            Err(e) => {
                if let Some(Ok(HandshakeMessage::Refuse { reason })) =
                    maybe_refusal.map(|body| HandshakeMessage::decode(&body))
                {
                    return Err(LinkEnd::NeverUp(AuthFailure::Handshake(HandshakeError::Refused(reason))));
                }
                self.counters.frame_error("open");
                return Err(self.end(DownReason::BadFrame(e.clone()), AuthFailure::Frame(e)));
            }
        };
        self.counters.frames_in.increment(1);
        self.counters.bytes_in.increment(len as u64 + 4);
        if let Some(up) = self.pending.take() {
            if self.ctx.reports.send(up).await.is_err() {
                return Err(LinkEnd::Down(DownReason::Shutdown));
            }
            self.is_up.store(true, Ordering::Relaxed);
        }
        match PeerMessage::decode(&plaintext) {
            Ok(PeerMessage::Ping { id, sent_us }) => {
                // A peer pinging faster than we answer loses answers, not memory.
                let _ = self.pongs.try_send(PeerMessage::Pong { id, sent_us });
            }
            Ok(PeerMessage::Pong { sent_us, .. }) => {
                let now_us = micros_since(self.started);
                if let Some(rtt_us) = now_us.checked_sub(sent_us) {
                    self.counters.rtt.set(rtt_us as f64 / 1e6);
                }
            }
            Ok(message) => {
                let report = Report::Message { generation: self.generation, from: self.node.clone(), message };
                if self.ctx.reports.send(report).await.is_err() {
                    return Err(LinkEnd::Down(DownReason::Shutdown));
                }
            }
            Err(e) => {
                // Authenticated, so from a peer with the secret: a newer build, or a bug. The
                // frame is skipped and the link kept.
                self.counters.frame_error("undecodable");
                self.undecodable += 1;
                if self.undecodable == 1 {
                    tracing::warn!(peer = %self.node.escaped(), error = %e, "skipped a relay message");
                } else {
                    tracing::debug!(peer = %self.node.escaped(), error = %e, "skipped a relay message");
                }
            }
        }
        Ok(())
    }
}

async fn write(
    mut write_half: OwnedWriteHalf,
    mut sealer: FrameSealer,
    mut queue: QueueRx,
    mut pongs: mpsc::Receiver<PeerMessage>,
    counters: &Counters,
    started: Instant,
) -> DownReason {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping_id = 0u64;
    loop {
        // Pongs and pings first, so that a long queue does not look like a dead link.
        let plaintext = tokio::select! {
            biased;
            Some(pong) = pongs.recv() => pong.encode(),
            _ = ping.tick() => {
                ping_id += 1;
                PeerMessage::Ping { id: ping_id, sent_us: micros_since(started) }.encode()
            }
            Some(message) = queue.recv() => message,
        };
        let frame = match sealer.seal(&plaintext) {
            Ok(frame) => frame,
            Err(e) => return DownReason::BadFrame(e),
        };
        if let Err(e) = write_half.write_all(&frame).await {
            return DownReason::Io(e.kind());
        }
        counters.frames_out.increment(1);
        counters.bytes_out.increment(frame.len() as u64);
    }
}
