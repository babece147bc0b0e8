//! The media workers: a few OS threads, each driving many sans-IO peer connections.
//!
//! Each worker owns one `mio` poller (epoll), the UDP sockets of its connections (one socket per
//! connection, like a browser: the server routes datagrams by the client's address, so two
//! connections must never share a local port), a timer set, and the connections themselves.
//! Datagrams are demultiplexed by the poll token of the socket they arrive on. The control side
//! (signaling tasks on tokio) talks to a worker through a command queue plus a `mio::Waker`.

pub mod fast_rx;
pub mod link;
pub mod peer;
pub mod receive;
pub mod recv_batch;
pub mod synth;
pub mod tap;
mod conn_io;

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
use std::os::fd::AsRawFd;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::stats::{Histogram, WorkerStats};
use link::{Admit, Link, LinkConfig};
use peer::{PublishSpec, Role};
use receive::{Arrival, StreamRx};
use conn_io::{feed, media_tick, on_event, on_message, send_feedback};
use synth::{AUDIO_CLOCK, AUDIO_PACKETS_PER_SEC, FPS, KIND_AUDIO, LAYERS, VIDEO_CLOCK};

const WAKE: Token = Token(usize::MAX);

/// `LOADTEST_DEBUG`: unset or `0` = quiet; any other value prints connection state changes and
/// the first participants' timeline; `sdp` also prints answers; `twcc` also prints every
/// subscriber datagram's RTP header, the RTP packets delivered, and the transport-cc feedback
/// sent (for checking the server's bandwidth estimation).
pub fn debug_mode() -> &'static str {
    static MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODE.get_or_init(|| {
        std::env::var("LOADTEST_DEBUG").ok().filter(|v| !v.is_empty() && v != "0").unwrap_or_default()
    })
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
    Publish { id: u64, spec: PublishSpec, label: String, reply: oneshot::Sender<anyhow::Result<PublisherOffer>> },
    PublisherAnswer { id: u64, sdp: String, reply: oneshot::Sender<anyhow::Result<()>> },
    /// A server offer for a subscriber connection (created on the first one). `t0` is when the
    /// participant started connecting its WebSocket.
    SubscriberOffer { id: u64, sdp: String, t0: Instant, reply: oneshot::Sender<anyhow::Result<String>> },
    Close { id: u64 },
    /// Close every connection, report, and stop.
    Finish { reply: oneshot::Sender<FinalReport> },
}

/// Per-subscriber figures at the end of the run.
#[derive(Clone, Debug)]
pub struct SubscriberSummary {
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
                let tw = (datagram[0] & 0x10 != 0 && len > 20 && datagram[12] == 0xbe && datagram[13] == 0xde)
                    .then(|| {
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
                    let mut ctx = Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
                    let next = media_tick(conn, now, &mut ctx);
                    self.arm(slot, TimerKind::Media, next);
                }
                TimerKind::Link => {
                    let mut ctx = Ctx { stats: &mut self.stats, latency: &mut self.interval_latency, epoch: self.config.epoch };
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

    fn new_conn(&mut self, id: u64, role: Role, now: Instant) -> anyhow::Result<usize> {
        let std_socket = std::net::UdpSocket::bind(SocketAddr::new(self.config.local_ip, 0))?;
        std_socket.set_nonblocking(true)?;
        recv_batch::enable_timestamps(std_socket.as_raw_fd())?;
        let local = std_socket.local_addr()?;
        let mut socket = UdpSocket::from_std(std_socket);
        let slot = self.conns.len();
        self.poll.registry().register(&mut socket, Token(slot), Interest::READABLE)?;
        let pc = peer::build(role, local, now)?;
        let link = (role == Role::Subscriber && self.config.link.is_active())
            .then(|| Link::new(self.config.link, self.config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id));
        self.conns.push(Conn {
            id,
            role,
            pc,
            socket,
            local,
            armed: [None; 4],
            dirty: false,
            connected: false,
            ever_connected: false,
            failed: false,
            closed: false,
            link,
            publisher: None,
            subscriber: None,
            fast: None,
        });
        self.by_id.insert(id, slot);
        match role {
            Role::Publisher => self.stats.publishers += 1,
            Role::Subscriber => self.stats.subscribers += 1,
        }
        Ok(slot)
    }

    fn publish_offer(&mut self, id: u64, spec: PublishSpec, label: &str, now: Instant) -> anyhow::Result<PublisherOffer> {
        let slot = self.new_conn(id, Role::Publisher, now)?;
        let conn = &mut self.conns[slot];
        let tracks = peer::add_publisher_tracks(&mut conn.pc, spec, label)?;
        let offer = conn.pc.create_offer(None)?;
        conn.pc.set_local_description(now, offer)?;
        let sdp = conn.pc.local_description().map(|d| d.sdp).ok_or_else(|| anyhow::anyhow!("no local description"))?;
        let mut descriptions = Vec::new();
        let mut state = PublisherState {
            video: None,
            audio: None,
            started: None,
            video_frames: 0,
            audio_packets: 0,
            paced: Default::default(),
        };
        if let Some((sender, ssrc)) = tracks.audio {
            let mid = peer::mid_of(&mut conn.pc, sender).unwrap_or_default();
            descriptions.push(TrackDescription { mid, source: TrackSource::Microphone, name: "mic".into(), layers: vec![] });
            state.audio = Some(AudioOut { sender, ssrc, seq: rand::random(), timestamp_base: rand::random(), payload_type: peer::PT_OPUS });
        }
        if let Some((sender, ssrcs)) = tracks.video {
            let mid = peer::mid_of(&mut conn.pc, sender).unwrap_or_default();
            descriptions.push(TrackDescription {
                mid: mid.clone(),
                source: TrackSource::Camera,
                name: "camera".into(),
                layers: LAYERS
                    .iter()
                    .map(|l| LayerInfo { rid: Rid(l.rid.into()), width: l.width.into(), height: l.height.into() })
                    .collect(),
            });
            state.video = Some(VideoOut {
                sender,
                ssrcs,
                seqs: std::array::from_fn(|_| rand::random()),
                keyframe_wanted: [true; 3],
                last_keyframe: [None; 3],
                picture_id: rand::random::<u16>() & 0x7fff,
                timestamp_base: rand::random(),
                payload_type: peer::PT_VP8,
                mid,
                mid_ext: None,
                rid_ext: None,
                sizes: std::array::from_fn(|i| synth::frame_sizes(LAYERS[i].kbps, KEYFRAME_EVERY_FRAMES as u32)),
            });
        }
        conn.publisher = Some(Box::new(state));
        self.mark_dirty(slot);
        Ok(PublisherOffer { sdp, tracks: descriptions })
    }

    fn publisher_answer(&mut self, id: u64, sdp: String, now: Instant) -> anyhow::Result<()> {
        let slot = *self.by_id.get(&id).ok_or_else(|| anyhow::anyhow!("no publisher {id}"))?;
        let conn = &mut self.conns[slot];
        conn.pc.set_remote_description(now, RTCSessionDescription::answer(sdp)?)?;
        let Some(publisher) = conn.publisher.as_mut() else { anyhow::bail!("not a publisher") };
        if let Some(video) = publisher.video.as_mut() {
            let (mid_ext, rid_ext, pt) = peer::sender_params(&mut conn.pc, video.sender, "video/VP8");
            video.mid_ext = mid_ext;
            video.rid_ext = rid_ext;
            video.payload_type = pt.ok_or_else(|| anyhow::anyhow!("server did not accept VP8"))?;
        }
        if let Some(audio) = publisher.audio.as_mut() {
            let (_, _, pt) = peer::sender_params(&mut conn.pc, audio.sender, "audio/opus");
            audio.payload_type = pt.ok_or_else(|| anyhow::anyhow!("server did not accept Opus"))?;
        }
        self.mark_dirty(slot);
        Ok(())
    }

    fn subscriber_offer(&mut self, id: u64, sdp: String, t0: Instant, now: Instant) -> anyhow::Result<String> {
        let slot = match self.by_id.get(&id) {
            Some(&slot) => slot,
            None => {
                let slot = self.new_conn(id, Role::Subscriber, now)?;
                self.conns[slot].subscriber = Some(Box::new(SubscriberState {
                    t0,
                    first_media: None,
                    last_media: None,
                    streams: HashMap::new(),
                    receivers: HashMap::new(),
                    keyframe: false,
                }));
                let twcc_ext = fast_rx::twcc_ext_id(&sdp);
                self.conns[slot].fast = Some(Box::new(fast_rx::FastRx::new(twcc_ext, debug_mode() == "twcc")));
                slot
            }
        };
        let conn = &mut self.conns[slot];
        if let Some(fast) = conn.fast.as_mut() {
            fast.learn_rtx(&sdp);
        }
        conn.pc.set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
        let answer = conn.pc.create_answer(None)?;
        conn.pc.set_local_description(now, answer)?;
        let sdp = conn.pc.local_description().map(|d| d.sdp).ok_or_else(|| anyhow::anyhow!("no local description"))?;
        if debug_mode() == "sdp" {
            eprintln!("answer of {id}:\n{sdp}");
        }
        self.mark_dirty(slot);
        Ok(sdp)
    }

    fn close_slot(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.closed {
            return;
        }
        let _ = conn.pc.close();
        while let Some(out) = conn.pc.poll_write() {
            let _ = conn.socket.send_to(&out.message, out.transport.peer_addr);
        }
        conn.closed = true;
        let _ = self.poll.registry().deregister(&mut conn.socket);
        for kind in [TimerKind::Pc, TimerKind::Media, TimerKind::Link, TimerKind::Feedback] {
            self.arm(slot, kind, None);
        }
    }

    fn close_all(&mut self, now: Instant) {
        // Final figures are taken before the connections go away.
        self.update_gauges(now);
        for slot in 0..self.conns.len() {
            self.close_slot(slot);
        }
    }

    // ---- reporting -------------------------------------------------------------------------------

    fn update_gauges(&mut self, now: Instant) {
        let mut s = (0, 0, 0, 0, 0, 0, 0, 0);
        let (mut video_expected, mut video_missing) = (0, 0);
        let mut receiving = 0;
        for conn in &mut self.conns {
            if conn.closed {
                continue;
            }
            match conn.role {
                Role::Publisher => {
                    if conn.connected {
                        s.0 += 1;
                    }
                }
                Role::Subscriber => {
                    if conn.connected {
                        s.1 += 1;
                    }
                    if conn.failed {
                        s.2 += 1;
                    }
                    if let Some(sub) = conn.subscriber.as_mut() {
                        if sub.first_media.is_some() {
                            s.3 += 1;
                        }
                        if sub.last_media.is_some_and(|t| now.duration_since(t) <= Duration::from_secs(1)) {
                            receiving += 1;
                        }
                        if sub.keyframe {
                            s.4 += 1;
                        }
                        for stream in sub.streams.values_mut() {
                            s.5 += stream.expected();
                            s.6 += stream.missing();
                            s.7 += stream.duplicates;
                            if stream.video {
                                video_expected += stream.expected();
                                video_missing += stream.missing();
                            }
                        }
                    }
                }
            }
        }
        self.stats.subscribers_receiving = receiving;
        self.stats.publishers_connected = s.0;
        self.stats.subscribers_connected = s.1;
        self.stats.subscribers_failed = s.2;
        self.stats.subscribers_with_media = s.3;
        self.stats.subscribers_with_keyframe = s.4;
        self.stats.rx_expected = s.5;
        self.stats.rx_missing = s.6;
        self.stats.rx_duplicates = s.7;
        self.stats.rx_video_expected = video_expected;
        self.stats.rx_video_missing = video_missing;
    }

    fn publish(&mut self, now: Instant) {
        self.update_gauges(now);
        let wall = now.duration_since(self.last_publish);
        self.last_publish = now;
        let Ok(mut shared) = self.shared.lock() else { return };
        // Cumulative counters are replaced; the per-interval parts accumulate until the
        // reporter takes them.
        let latency = std::mem::take(&mut shared.latency);
        let joins = std::mem::take(&mut shared.joins_ms);
        let (busy, prev_wall, late) = (shared.busy, shared.wall, shared.timer_late_max);
        let mut fresh_joins = std::mem::take(&mut self.stats.joins_ms);
        *shared = self.stats.clone();
        shared.latency = latency;
        shared.latency.merge(&self.interval_latency);
        shared.joins_ms = joins;
        shared.joins_ms.append(&mut fresh_joins);
        shared.busy = busy + self.busy;
        shared.wall = prev_wall + wall;
        shared.timer_late_max = late.max(self.timer_late_max);
        shared.at = Some(now);
        self.interval_latency.clear();
        self.busy = Duration::ZERO;
        self.timer_late_max = Duration::ZERO;
    }

    fn final_report(&mut self) -> FinalReport {
        let mut stats = self.stats.clone();
        stats.latency = Histogram::default();
        let mut subscribers = Vec::new();
        for conn in &self.conns {
            let Some(sub) = conn.subscriber.as_ref() else { continue };
            let (mut received, mut expected, mut missing) = (0, 0, 0);
            for s in sub.streams.values() {
                received += s.received;
                expected += s.expected();
                missing += s.missing();
            }
            subscribers.push(SubscriberSummary {
                connected: conn.ever_connected,
                join_ms: sub.first_media.map(|t| t.duration_since(sub.t0).as_secs_f64() * 1000.0),
                received,
                expected,
                missing,
                keyframe: sub.keyframe,
            });
        }
        FinalReport { stats, subscribers }
    }
}
