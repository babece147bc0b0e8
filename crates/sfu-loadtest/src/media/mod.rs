//! The media workers: a few OS threads, each driving many sans-IO peer connections.
//!
//! Each worker owns one `mio` poller (epoll), the UDP sockets of its connections (one socket per
//! connection, like a browser: the server routes datagrams by the client's address, so two
//! connections must never share a local port), a timer set, and the connections themselves.
//! Datagrams are demultiplexed by the poll token of the socket they arrive on. The control side
//! (signaling tasks on tokio) talks to a worker through a command queue plus a `mio::Waker`.

mod conn_io;
pub mod fast_rx;
pub mod link;
pub mod peer;
pub mod receive;
pub mod recv_batch;
mod setup;
mod snapshot;
pub mod synth;
pub mod tap;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu_proto::{LayerInfo, Rid, TrackDescription, TrackSource};
use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::stats::{Histogram, WorkerStats};
use conn_io::{feed, media_tick, on_event, on_message, send_feedback};
use link::{Admit, Link, LinkConfig};
use peer::{PublishSpec, Role};
use receive::{Arrival, StreamRx};
use synth::{AUDIO_CLOCK, AUDIO_PACKETS_PER_SEC, FPS, KIND_AUDIO, LAYERS, VIDEO_CLOCK};

const WAKE: Token = Token(usize::MAX);

/// `LOADTEST_DEBUG`: unset or `0` = quiet; any other value prints connection state changes and
/// the first participants' timeline; `sdp` also prints answers; `twcc` also prints every
/// subscriber datagram's RTP header, the RTP packets delivered, and the transport-cc feedback
/// sent (for checking the server's bandwidth estimation).
pub fn debug_mode() -> &'static str {
    static MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODE.get_or_init(|| std::env::var("LOADTEST_DEBUG").ok().filter(|v| !v.is_empty() && v != "0").unwrap_or_default())
}

fn debug() -> bool {
    !debug_mode().is_empty()
}
/// Keyframe interval of the synthetic video.
const KEYFRAME_EVERY_FRAMES: u64 = 3 * FPS as u64;
/// A publisher that falls further behind than this skips frames instead of bursting.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);
/// Minimum spacing of a subscriber's PLIs for one stream.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// A publisher answers at most one keyframe request per layer in this time, as a browser's
/// encoder does (libwebrtc ignores requests within 300 ms of the last keyframe it sent for one).
const MIN_KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);
/// How often a worker publishes its counters.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

pub struct PublisherOffer {
    pub sdp: String,
    pub tracks: Vec<TrackDescription>,
}

pub enum Command {
    /// Create a publisher connection with these tracks and return its offer.
    Publish {
        id: u64,
        spec: PublishSpec,
        label: String,
        reply: oneshot::Sender<anyhow::Result<PublisherOffer>>,
    },
    PublisherAnswer {
        id: u64,
        sdp: String,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    /// A server offer for a subscriber connection (created on the first one). `t0` is when the
    /// participant started connecting its WebSocket.
    SubscriberOffer {
        id: u64,
        sdp: String,
        t0: Instant,
        reply: oneshot::Sender<anyhow::Result<String>>,
    },
    Close {
        id: u64,
    },
    /// Close every connection, report, and stop.
    Finish {
        reply: oneshot::Sender<FinalReport>,
    },
}

/// Per-subscriber figures at the end of the run.
#[derive(Clone, Debug)]
pub struct SubscriberSummary {
    /// The subscriber connection's id (its participant's id times two, plus one).
    pub conn: u64,
    pub connected: bool,
    pub join_ms: Option<f64>,
    pub received: u64,
    pub expected: u64,
    pub missing: u64,
    pub keyframe: bool,
}

pub struct FinalReport {
    pub stats: WorkerStats,
    pub subscribers: Vec<SubscriberSummary>,
}

pub struct WorkerHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    pub shared: Arc<Mutex<WorkerStats>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }

    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Settings shared by every worker.
#[derive(Clone)]
pub struct WorkerConfig {
    pub local_ip: IpAddr,
    pub epoch: Instant,
    pub link: LinkConfig,
    pub seed: u64,
}

pub fn spawn(index: usize, config: WorkerConfig) -> anyhow::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Mutex::new(WorkerStats::default()));
    let thread_name = format!("lt-media-{index}");
    let worker = Worker {
        index,
        poll,
        commands: rx,
        config,
        conns: Vec::new(),
        by_id: HashMap::new(),
        free: Vec::new(),
        retired: snapshot::Retired::default(),
        timers: BTreeSet::new(),
        dirty: Vec::new(),
        stats: WorkerStats::default(),
        shared: shared.clone(),
        interval_latency: Histogram::default(),
        busy: Duration::ZERO,
        last_publish: Instant::now(),
        timer_late_max: Duration::ZERO,
    };
    let thread = std::thread::Builder::new().name(thread_name).spawn(move || worker.run())?;
    Ok(WorkerHandle { commands: tx, waker, shared, thread: Some(thread) })
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum TimerKind {
    Pc,
    Media,
    Link,
    /// The subscriber's own feedback chain (fast_rx).
    Feedback,
}

struct VideoOut {
    sender: RTCRtpSenderId,
    ssrcs: [u32; 3],
    seqs: [u16; 3],
    keyframe_wanted: [bool; 3],
    /// When each layer's last keyframe left (requests soon after it are ignored).
    last_keyframe: [Option<Instant>; 3],
    picture_id: u16,
    timestamp_base: u32,
    payload_type: u8,
    mid: String,
    mid_ext: Option<u8>,
    rid_ext: Option<u8>,
    sizes: [(usize, usize); 3],
}

struct AudioOut {
    sender: RTCRtpSenderId,
    ssrc: u32,
    seq: u16,
    timestamp_base: u32,
    payload_type: u8,
}

struct PublisherState {
    video: Option<VideoOut>,
    audio: Option<AudioOut>,
    started: Option<Instant>,
    video_frames: u64,
    audio_packets: u64,
    /// Video packets built but not yet sent, with when each is due (see `conn_io::PACING_PERCENT`).
    paced: std::collections::VecDeque<(Instant, rtc::rtp::Packet)>,
}

struct SubscriberState {
    t0: Instant,
    first_media: Option<Instant>,
    last_media: Option<Instant>,
    streams: HashMap<u32, StreamRx>,
    receivers: HashMap<u32, RTCRtpReceiverId>,
    keyframe: bool,
}

struct Conn {
    id: u64,
    role: Role,
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    armed: [Option<Instant>; 4],
    dirty: bool,
    connected: bool,
    ever_connected: bool,
    failed: bool,
    closed: bool,
    link: Option<Link>,
    publisher: Option<Box<PublisherState>>,
    subscriber: Option<Box<SubscriberState>>,
    /// A subscriber's own receive path and feedback.
    fast: Option<Box<fast_rx::FastRx>>,
}

struct Worker {
    index: usize,
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    config: WorkerConfig,
    conns: Vec<Conn>,
    by_id: HashMap<u64, usize>,
    /// Slots of closed connections, reused by the next new ones (so a run whose subscribers come
    /// and go holds sockets and peer connections only for the ones present).
    free: Vec<usize>,
    /// What the closed subscriber connections received, kept after their slots are reused.
    retired: snapshot::Retired,
    timers: BTreeSet<(Instant, usize, TimerKind)>,
    dirty: Vec<usize>,
    stats: WorkerStats,
    shared: Arc<Mutex<WorkerStats>>,
    interval_latency: Histogram,
    busy: Duration,
    last_publish: Instant,
    timer_late_max: Duration,
}

/// What the loop needs while a connection is borrowed.
struct Ctx<'a> {
    stats: &'a mut WorkerStats,
    latency: &'a mut Histogram,
    epoch: Instant,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut batch = recv_batch::RecvBatch::default();
        let mut finish: Option<oneshot::Sender<FinalReport>> = None;
        let mut awake_since = Instant::now();
        loop {
            let now = Instant::now();
            self.flush(now);
            if let Some(reply) = finish.take() {
                let report = self.final_report();
                let _ = reply.send(report);
                return;
            }
            let next_timer = self.timers.first().map(|t| t.0);
            let next_publish = self.last_publish + PUBLISH_EVERY;
            let wake_at = next_timer.map_or(next_publish, |t| t.min(next_publish));
            let timeout = wake_at.saturating_duration_since(Instant::now());
            self.busy += awake_since.elapsed();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                eprintln!("worker {}: poll failed: {e}", self.index);
                return;
            }
            let now = Instant::now();
            awake_since = now;
            for event in events.iter() {
                match event.token() {
                    WAKE => {}
                    Token(slot) => self.read_socket(slot, &mut batch),
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                if let Command::Finish { reply } = command {
                    self.close_all(now);
                    finish = Some(reply);
                } else {
                    self.handle_command(command, now);
                }
            }
            self.run_timers(now);
            if now >= next_publish {
                self.publish(now);
            }
        }
    }

    // ---- sockets and timers ----------------------------------------------------------------------

    fn read_socket(&mut self, slot: usize, batch: &mut recv_batch::RecvBatch) {
        loop {
            let Some(conn) = self.conns.get(slot) else { return };
            if conn.closed {
                return;
            }
            let count = match batch.recv(conn.socket.as_raw_fd()) {
                Ok(n) => n,
                Err(_) => return,
            };
            for i in 0..count {
                if let Some((datagram, from, at)) = batch.get(i) {
                    self.on_datagram(slot, datagram, from, at);
                }
            }
            if count < recv_batch::MAX_PER_CALL {
                return;
            }
        }
    }

    /// One datagram read off a connection's socket, with the time the kernel received it (which
    /// feeds latency and transport-cc feedback).
    fn on_datagram(&mut self, slot: usize, datagram: &[u8], from: SocketAddr, now: Instant) {
        let len = datagram.len();
        {
            let Some(conn) = self.conns.get_mut(slot) else { return };
            if conn.closed {
                return;
            }
            if conn.role == Role::Subscriber
                && len > 12
                && (128..192).contains(&datagram[0])
                && !(192..224).contains(&datagram[1])
                && debug_mode() == "twcc"
            {
                let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
                let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
                // One-byte header extension block right after the fixed header (no CSRCs here).
                let tw =
                    (datagram[0] & 0x10 != 0 && len > 20 && datagram[12] == 0xbe && datagram[13] == 0xde).then(|| {
                        let (id, l) = (datagram[16] >> 4, datagram[16] & 0x0f);
                        (id, l, u16::from_be_bytes([datagram[17], datagram[18]]))
                    });
                eprintln!("wire ssrc {ssrc:08x} pt {} seq {seq} ext {tw:?} len {len}", datagram[1] & 0x7f);
            }
            if let Some(link) = conn.link.as_mut() {
                match link.admit(datagram, from, now) {
                    Admit::Now => {}
                    Admit::Queued(at) => {
                        self.arm(slot, TimerKind::Link, Some(at));
                        return;
                    }
                    Admit::DroppedLoss => {
                        self.stats.impair_dropped_loss += 1;
                        return;
                    }
                    Admit::DroppedQueue => {
                        self.stats.impair_dropped_queue += 1;
                        return;
                    }
                }
            }
        }
        let mut ctx = Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
        let conn = &mut self.conns[slot];
        let dirty = feed(conn, datagram, from, now, &mut ctx);
        let feedback_due = conn.fast.as_mut().and_then(|f| f.poll_timeout());
        self.arm(slot, TimerKind::Feedback, feedback_due);
        if dirty {
            self.mark_dirty(slot);
        }
    }

    fn arm(&mut self, slot: usize, kind: TimerKind, at: Option<Instant>) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let k = kind as usize;
        if conn.armed[k] == at {
            return;
        }
        if let Some(old) = conn.armed[k] {
            self.timers.remove(&(old, slot, kind));
        }
        if let Some(new) = at {
            self.timers.insert((new, slot, kind));
        }
        conn.armed[k] = at;
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(&(at, slot, kind)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.timer_late_max = self.timer_late_max.max(now - at);
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            conn.armed[kind as usize] = None;
            if conn.closed {
                continue;
            }
            match kind {
                TimerKind::Pc => {
                    let _ = conn.pc.handle_timeout(now);
                }
                TimerKind::Media => {
                    let mut ctx =
                        Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
                    let next = media_tick(conn, now, &mut ctx);
                    self.arm(slot, TimerKind::Media, next);
                }
                TimerKind::Link => {
                    let mut ctx =
                        Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
                    let conn = &mut self.conns[slot];
                    if let Some(mut link) = conn.link.take() {
                        while let Some((from, data)) = link.pop_due(now) {
                            feed(conn, &data, from, now, &mut ctx);
                        }
                        let next = link.next_due();
                        conn.link = Some(link);
                        self.arm(slot, TimerKind::Link, next);
                    }
                    let feedback_due = self.conns[slot].fast.as_mut().and_then(|f| f.poll_timeout());
                    self.arm(slot, TimerKind::Feedback, feedback_due);
                }
                TimerKind::Feedback => {
                    let next = send_feedback(conn, now, &mut self.stats);
                    self.arm(slot, TimerKind::Feedback, next);
                }
            }
            self.mark_dirty(slot);
        }
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Drains every touched connection: datagrams out, events and messages handled, timer re-armed.
    fn flush(&mut self, now: Instant) {
        let mut rounds = 0;
        while !self.dirty.is_empty() && rounds < 8 {
            rounds += 1;
            for slot in std::mem::take(&mut self.dirty) {
                self.conns[slot].dirty = false;
                let again = self.drain(slot, now);
                if again {
                    self.mark_dirty(slot);
                }
            }
        }
    }

    /// Returns true when handling produced more work for this connection.
    fn drain(&mut self, slot: usize, now: Instant) -> bool {
        let mut ctx = Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
        let conn = &mut self.conns[slot];
        if conn.closed {
            return false;
        }
        let mut wrote_more = false;
        let mut start_media = false;
        for _ in 0..64 {
            let mut progressed = false;
            while let Some(out) = conn.pc.poll_write() {
                progressed = true;
                match conn.socket.send_to(&out.message, out.transport.peer_addr) {
                    Ok(n) => {
                        ctx.stats.tx_packets += 1;
                        ctx.stats.tx_bytes += n as u64;
                    }
                    Err(_) => ctx.stats.send_errors += 1,
                }
            }
            while let Some(event) = conn.pc.poll_event() {
                progressed = true;
                if on_event(conn, event, now, &mut ctx) {
                    start_media = true;
                }
            }
            while let Some(message) = conn.pc.poll_read() {
                progressed = true;
                if on_message(conn, message.message, now, &mut ctx) {
                    wrote_more = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let deadline = conn.pc.poll_timeout();
        let feedback_due = conn.fast.as_mut().and_then(|f| f.poll_timeout());
        self.arm(slot, TimerKind::Pc, deadline);
        self.arm(slot, TimerKind::Feedback, feedback_due);
        if start_media {
            self.arm(slot, TimerKind::Media, Some(now));
        }
        wrote_more
    }

    // ---- commands --------------------------------------------------------------------------------

    fn handle_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Publish { id, spec, label, reply } => {
                let _ = reply.send(self.publish_offer(id, spec, &label, now));
            }
            Command::PublisherAnswer { id, sdp, reply } => {
                let _ = reply.send(self.publisher_answer(id, sdp, now));
            }
            Command::SubscriberOffer { id, sdp, t0, reply } => {
                let _ = reply.send(self.subscriber_offer(id, sdp, t0, now));
            }
            Command::Close { id } => {
                if let Some(&slot) = self.by_id.get(&id) {
                    self.close_slot(slot);
                }
            }
            Command::Finish { .. } => {}
        }
    }
}
