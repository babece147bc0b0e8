//! The control plane's handle on the media plane: starts the shards and turns each request
//! into a command for the shard that owns the connection.

use bytes::Bytes;
use sfu_core::LayerSet;
use sfu_proto::{IceCandidate, ParticipantId, SubscriptionSettings, TrackDescription};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::api::{DownTrackSpec, MediaEvent, PublisherAnswer, SubscriberOffer};
use crate::relay::{LinkId, LinkSpec, RelayEndpoint, RelayTrack, RelayTrackSpec};
use crate::sdp_candidates::tidy_candidates;
use crate::shard::{Command, PeerShard, ShardChannels, ShardHandle, ShardSettings, ShardShell, rtcp_ssrcs};
use crate::tcp::TcpHandoff;
use crate::{ConnId, MediaError, TrackKey};

/// Where and how the shards listen.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// Address every shard socket binds to. Must be a concrete address: a wildcard bind would
    /// skip loopback candidates.
    pub bind: IpAddr,
    /// Address put in ICE candidates when it differs from `bind` (1:1 NAT).
    pub announce: Option<IpAddr>,
    /// Shard `i` listens on `udp_port_start + i`.
    pub udp_port_start: u16,
    /// The node's ICE-TCP port (RFC 6544, one for all shards), on `bind`; 0 = no ICE-TCP.
    /// Every connection then also announces a passive TCP candidate at the announced address
    /// and this port.
    pub tcp_port: u16,
    /// Number of shards; 0 means one per core.
    pub shards: usize,
    /// Subscriber connections negotiate transport-cc and each gets a bandwidth estimate
    /// shared among its tracks by the allocator.
    pub bandwidth_estimation: bool,
    /// Publishers are told which simulcast layers anyone wants ([`MediaEvent::EncodeLayers`]).
    pub dynacast: bool,
}

/// Cheap to clone; every clone talks to the same shards.
#[derive(Clone)]
pub struct MediaPlane {
    shards: Arc<Vec<ShardHandle>>,
    /// The ICE-TCP listener's thread, when it runs (it ends with the process).
    _tcp_listener: Option<Arc<std::thread::JoinHandle<()>>>,
    /// Each shard's relay media address and link RTCP SSRC, by index.
    relay_endpoints: Arc<Vec<RelayEndpoint>>,
    next_serial: Arc<AtomicU64>,
    next_shard: Arc<AtomicUsize>,
}

impl MediaPlane {
    /// Binds every shard's socket and starts its thread.
    pub fn start(config: &MediaConfig, events: mpsc::UnboundedSender<MediaEvent>) -> Result<Self, MediaError> {
        let count = match config.shards {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let mut senders = Vec::with_capacity(count);
        let mut receivers = Vec::with_capacity(count);
        for _ in 0..count {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push(rx);
        }
        let peers: Vec<PeerShard> = senders
            .iter()
            .map(|commands| PeerShard { commands: commands.clone(), forward_backlog: Arc::new(AtomicUsize::new(0)) })
            .collect();
        let announce_ip = config.announce.unwrap_or(config.bind);
        if announce_ip.is_unspecified() {
            return Err(MediaError::Io(std::io::Error::other(
                "bound to a wildcard address: set announce to the address clients can reach",
            )));
        }
        let (tcp_port, mut tcp_receivers) = IceTcpPort::bind(config, announce_ip, count)?;
        let tcp_announce = tcp_port.as_ref().map(|port| port.announce);
        let mut handles = Vec::with_capacity(count);
        let relay_rtcp = rtcp_ssrcs(count);
        let mut relay_endpoints = Vec::with_capacity(count);
        for (index, commands) in receivers.into_iter().enumerate() {
            // Port 0 lets the system pick a free port per shard.
            let port = match config.udp_port_start {
                0 => 0,
                start => start
                    .checked_add(index as u16)
                    .ok_or_else(|| MediaError::Io(std::io::Error::other("udp port range overflows 65535")))?,
            };
            let socket = bind_udp(SocketAddr::new(config.bind, port))?;
            let bind = socket.local_addr()?;
            let announce = SocketAddr::new(announce_ip, bind.port());
            let settings = ShardSettings {
                index,
                announce,
                tcp_announce,
                estimate_bandwidth: config.bandwidth_estimation,
                dynacast: config.dynacast,
                shards: count,
                relay_rtcp_ssrc: relay_rtcp[index],
            };
            relay_endpoints.push(RelayEndpoint { media: announce, rtcp_ssrc: relay_rtcp[index] });
            let tcp = tcp_receivers[index].take();
            let channels = ShardChannels { commands, peers: peers.clone(), events: events.clone(), tcp };
            let shard = ShardShell::new(settings, socket, channels)?;
            let thread = std::thread::Builder::new().name(format!("media-shard-{index}")).spawn(move || shard.run())?;
            handles.push(ShardHandle { commands: senders[index].clone(), _thread: Arc::new(thread) });
            tracing::info!(shard = index, %bind, %announce, "media shard listening");
        }
        let tcp_listener = match tcp_port {
            Some(port) => Some(Arc::new(port.start()?)),
            None => None,
        };
        Ok(Self {
            shards: Arc::new(handles),
            _tcp_listener: tcp_listener,
            relay_endpoints: Arc::new(relay_endpoints),
            next_serial: Arc::new(AtomicU64::new(1)),
            next_shard: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Reserves an id for a new connection, spreading connections over shards round-robin.
    pub fn allocate_conn(&self) -> ConnId {
        self.conn_on(self.next_shard_in_turn())
    }

    /// Reserves a participant's publisher and subscriber connections on one shard, the next in
    /// turn. (Two single allocations would, with two shards, put every publisher connection on
    /// one shard and every subscriber connection on the other.)
    pub fn allocate_conn_pair(&self) -> (ConnId, ConnId) {
        let shard = self.next_shard_in_turn();
        (self.conn_on(shard), self.conn_on(shard))
    }

    fn next_shard_in_turn(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    fn conn_on(&self, shard: usize) -> ConnId {
        ConnId::new(shard, self.next_serial.fetch_add(1, Ordering::Relaxed))
    }

    fn send(&self, shard: usize, command: Command) -> Result<(), MediaError> {
        let handle = self.shards.get(shard).ok_or(MediaError::ShardGone)?;
        handle.commands.send(command).map_err(|_| MediaError::ShardGone)
    }

    async fn ask<T>(
        &self,
        conn: ConnId,
        make: impl FnOnce(oneshot::Sender<Result<T, MediaError>>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(conn.shard(), make(reply))?;
        answer.await.map_err(|_| MediaError::ShardGone)?
    }

    /// Applies a publisher connection's offer (creating the connection on first use) and
    /// returns the answer plus the tracks it added or removed.
    pub async fn publisher_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<TrackDescription>,
    ) -> Result<PublisherAnswer, MediaError> {
        let mut answer = self.ask(conn, |reply| Command::PublisherOffer { conn, owner, sdp, tracks, reply }).await?;
        answer.sdp = tidy_candidates(&answer.sdp);
        Ok(answer)
    }

    /// Adds a track to a subscriber connection (creating it on first use). Takes effect for
    /// the client after the next [`subscriber_offer`](Self::subscriber_offer).
    pub async fn subscriber_add_track(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        spec: DownTrackSpec,
    ) -> Result<(), MediaError> {
        self.ask(conn, |reply| Command::AddDownTrack { conn, owner, spec: Box::new(spec), reply }).await
    }

    pub async fn subscriber_remove_track(&self, conn: ConnId, key: TrackKey) -> Result<(), MediaError> {
        self.ask(conn, |reply| Command::RemoveDownTrack { conn, key, reply }).await
    }

    /// Creates the subscriber connection's next offer.
    pub async fn subscriber_offer(&self, conn: ConnId, ice_restart: bool) -> Result<SubscriberOffer, MediaError> {
        let mut offer = self.ask(conn, |reply| Command::SubscriberOffer { conn, ice_restart, reply }).await?;
        offer.sdp = tidy_candidates(&offer.sdp);
        Ok(offer)
    }

    pub async fn subscriber_answer(&self, conn: ConnId, sdp: String) -> Result<(), MediaError> {
        self.ask(conn, |reply| Command::SubscriberAnswer { conn, sdp, reply }).await
    }

    /// Answers a client's offer on an egress connection (WHEP): the client's recvonly sections
    /// receive `tracks`.
    pub async fn egress_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
    ) -> Result<String, MediaError> {
        let answer = self.ask(conn, |reply| Command::EgressOffer { conn, owner, sdp, tracks, reply }).await?;
        Ok(tidy_candidates(&answer))
    }

    pub async fn add_remote_candidate(&self, conn: ConnId, candidate: IceCandidate) -> Result<(), MediaError> {
        self.ask(conn, |reply| Command::RemoteCandidate { conn, candidate, reply }).await
    }

    pub fn set_subscription(&self, conn: ConnId, key: TrackKey, settings: SubscriptionSettings) {
        let _ = self.send(conn.shard(), Command::SetSubscription { conn, key, settings });
    }

    /// Tells every shard that a track was muted or unmuted by its publisher.
    pub fn set_muted(&self, key: TrackKey, muted: bool) {
        for shard in 0..self.shards.len() {
            let _ = self.send(shard, Command::SetMuted { key, muted });
        }
    }

    /// Top-N audio: tells every shard whether the audio track `key` is among its room's loudest
    /// (forwarded) or not (held back).
    pub fn set_among_loudest(&self, key: TrackKey, among: bool) {
        for shard in 0..self.shards.len() {
            let _ = self.send(shard, Command::SetAmongLoudest { key, among });
        }
    }

    /// Tells every shard that `participant` started or stopped speaking (its video is favoured
    /// when bandwidth is short).
    pub fn set_speaking(&self, participant: &ParticipantId, speaking: bool) {
        for shard in 0..self.shards.len() {
            let _ = self.send(shard, Command::SetSpeaking { participant: participant.clone(), speaking });
        }
    }

    /// Sends a message on a publisher connection's data channel.
    pub fn send_data(&self, conn: ConnId, text: bool, payload: Bytes) {
        let _ = self.send(conn.shard(), Command::SendData { conn, text, payload });
    }

    pub fn close(&self, conn: ConnId) {
        let _ = self.send(conn.shard(), Command::Close { conn });
    }

    /// This node's shards as its peers must know them (for the link handshake): where each
    /// receives relay media (its announced address) and the SSRC of its link RTCP.
    pub fn relay_endpoints(&self) -> Vec<RelayEndpoint> {
        self.relay_endpoints.to_vec()
    }

    /// Opens a link to another node on every shard. Opening an open link again replaces its
    /// keys; what crosses it stays.
    pub fn open_link(&self, spec: LinkSpec) {
        let spec = Arc::new(spec);
        for shard in 0..self.shards.len() {
            let _ = self.send(shard, Command::OpenLink(spec.clone()));
        }
    }

    /// Closes a link on every shard: its relay tracks and relay outs go with it.
    pub fn close_link(&self, link: LinkId) {
        for shard in 0..self.shards.len() {
            let _ = self.send(shard, Command::CloseLink(link));
        }
    }

    /// Receives a track published on `link`'s peer: it lands on the next shard in turn, as a
    /// track published there, with one new SSRC per layer for the peer to send it with. Local
    /// connections subscribe to the returned key as to any track.
    pub async fn add_relay_track(&self, link: LinkId, spec: RelayTrackSpec) -> Result<RelayTrack, MediaError> {
        let shard = self.next_shard_in_turn();
        let (reply, answer) = oneshot::channel();
        self.send(shard, Command::AddRelayTrack { link, spec: Box::new(spec), reply })?;
        answer.await.map_err(|_| MediaError::ShardGone)?
    }

    /// Starts a room's audio mix on the next shard in turn: the key of the mixed track, which
    /// listeners subscribe to like any track. Fails with [`MediaError::AudioMixUnavailable`] in
    /// a build without the `audio-mix` feature.
    pub async fn add_mix(&self) -> Result<TrackKey, MediaError> {
        let shard = self.next_shard_in_turn();
        let (reply, answer) = oneshot::channel();
        self.send(shard, Command::AddMix { reply })?;
        answer.await.map_err(|_| MediaError::ShardGone)?
    }

    /// Ends a room's mix (remove its subscriptions as for an unpublished track).
    pub fn remove_mix(&self, key: TrackKey) {
        let _ = self.send(key.shard(), Command::RemoveMix { key });
    }

    /// Mixes `speaker`'s audio track `input` into `mix`.
    pub async fn add_mix_input(
        &self,
        mix: TrackKey,
        input: TrackKey,
        speaker: ParticipantId,
    ) -> Result<(), MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(mix.shard(), Command::AddMixInput { mix, input, speaker, reply })?;
        answer.await.map_err(|_| MediaError::ShardGone)?
    }

    /// Stops mixing `input` into `mix`.
    pub fn remove_mix_input(&self, mix: TrackKey, input: TrackKey) {
        let _ = self.send(mix.shard(), Command::RemoveMixInput { mix, input });
    }

    /// Stops receiving a relay track (remove its subscriptions as for an unpublished track).
    pub fn remove_relay_track(&self, key: TrackKey) {
        let _ = self.send(key.shard(), Command::RemoveRelayTrack { key });
    }

    /// Sends a track published here over `link` to `dest` (the peer's [`RelayTrack`]), layer `i`
    /// as `ssrcs[i]`. Each layer starts at its next keyframe, which is asked for at once.
    pub async fn add_relay_out(
        &self,
        key: TrackKey,
        link: LinkId,
        dest: SocketAddr,
        ssrcs: Vec<u32>,
    ) -> Result<(), MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(key.shard(), Command::AddRelayOut { key, link, dest, ssrcs, reply })?;
        answer.await.map_err(|_| MediaError::ShardGone)?
    }

    /// Stops sending a track over `link`.
    pub fn remove_relay_out(&self, key: TrackKey, link: LinkId) {
        let _ = self.send(key.shard(), Command::RemoveRelayOut { key, link });
    }

    /// The far side of `link` uses `used` of track `key` (published here) and asks for at
    /// most `wanted` (its [`MediaEvent::RelayDemand`]): only those layers cross, each new one
    /// from its next keyframe (asked for at once), each dropped one two seconds later; `wanted`
    /// joins the publisher's dynacast demand. Until the first call every layer crosses.
    pub fn set_relay_layers(&self, key: TrackKey, link: LinkId, used: LayerSet, wanted: Option<u8>) {
        let _ = self.send(key.shard(), Command::SetRelayLayers { key, link, used, wanted });
    }

    /// The publisher of relay track `key` sends `layers` (its node's
    /// [`MediaEvent::LayersActive`]): subscribers here may ask for them though they do not
    /// cross yet.
    pub fn relay_layers_active(&self, key: TrackKey, layers: LayerSet) {
        let _ = self.send(key.shard(), Command::RelayLayersActive { key, layers });
    }
}

/// Socket buffers per shard: a shard serves hundreds of connections, and a burst (a keyframe
/// fanned out, every client's STUN check at once) must not overflow the kernel's default
/// ~200 KiB. The kernel caps the request at net.core.rmem_max / wmem_max.
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// Connections waiting to be accepted on the ICE-TCP port: a burst of clients joining at once.
const TCP_BACKLOG: i32 = 1024;

/// The node's ICE-TCP port, bound, with a channel to each shard for the connections it hands on.
struct IceTcpPort {
    listener: std::net::TcpListener,
    /// Where clients reach it: the passive candidate every connection announces.
    announce: SocketAddr,
    handoffs: Vec<mpsc::UnboundedSender<TcpHandoff>>,
}

impl IceTcpPort {
    /// Binds `config.tcp_port` (none when 0); returns it and each shard's end of its channel.
    #[allow(clippy::type_complexity)]
    fn bind(
        config: &MediaConfig,
        announce_ip: IpAddr,
        shards: usize,
    ) -> Result<(Option<Self>, Vec<Option<mpsc::UnboundedReceiver<TcpHandoff>>>), MediaError> {
        if config.tcp_port == 0 {
            return Ok((None, (0..shards).map(|_| None).collect()));
        }
        let addr = SocketAddr::new(config.bind, config.tcp_port);
        let listener = bind_tcp(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding the ICE-TCP port {addr}: {e}")))?;
        let (handoffs, receivers) = (0..shards)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            })
            .unzip();
        Ok((Some(Self { listener, announce: SocketAddr::new(announce_ip, config.tcp_port), handoffs }), receivers))
    }

    /// Starts the listener's thread.
    fn start(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        let bound = self.listener.local_addr()?;
        let thread = crate::tcp::listener::start(self.listener, self.handoffs)?;
        tracing::info!(%bound, announce = %self.announce, "ICE-TCP listening");
        Ok(thread)
    }
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restarted server binds again while its old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, it only drops sooner under bursts.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if granted < SOCKET_BUFFER_BYTES {
        tracing::warn!(
            requested = SOCKET_BUFFER_BYTES,
            granted,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max for large rooms"
        );
    }
    if addr.is_ipv4() {
        // Media is never fragmented: with "don't fragment" set, the kernel also skips the IP
        // ID generator (a hash and a shared atomic per datagram) that only fragments need.
        // PROBE sets the bit without acting on path-MTU reports; every datagram we send fits
        // the 1200-byte budget WebRTC stacks keep to.
        let probe: libc::c_int = libc::IP_PMTUDISC_PROBE;
        // SAFETY: a valid descriptor we own, and a pointer to a c_int of the size given.
        let set = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&probe as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot set don't-fragment on the media socket");
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_sockets_send_with_dont_fragment() {
        let socket = bind_udp(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let mut mode: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid descriptor, and a c_int-sized buffer with its length.
        let got = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&mut mode as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(got, 0);
        assert_eq!(mode, libc::IP_PMTUDISC_PROBE);
    }

    #[test]
    fn participants_spread_over_shards_with_both_connections_together() {
        let config = MediaConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            announce: None,
            udp_port_start: 0,
            tcp_port: 0,
            shards: 2,
            bandwidth_estimation: false,
            dynacast: false,
        };
        let (events, _events_rx) = mpsc::unbounded_channel();
        let plane = MediaPlane::start(&config, events).unwrap();
        let pairs: Vec<_> = (0..4).map(|_| plane.allocate_conn_pair()).collect();
        for (publisher, subscriber) in &pairs {
            assert_eq!(publisher.shard(), subscriber.shard());
            assert_ne!(publisher, subscriber);
        }
        let subscriber_shards: Vec<usize> = pairs.iter().map(|(_, s)| s.shard()).collect();
        assert_eq!(subscriber_shards, [0, 1, 0, 1]);
        let endpoints = plane.relay_endpoints();
        assert_eq!(endpoints.len(), 2);
        assert_ne!(endpoints[0].media, endpoints[1].media);
        assert_ne!(endpoints[0].rtcp_ssrc, endpoints[1].rtcp_ssrc, "each shard's link RTCP has its own SSRC");
    }
}
