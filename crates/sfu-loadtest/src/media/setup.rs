//! A worker's connections as signaling makes and ends them: a socket and peer connection per
//! simulated client, the publisher's offer and the server's answer, the server's offers to a
//! subscriber and its answers.

use super::*;

impl Worker {
    pub(super) fn new_conn(&mut self, id: u64, role: Role, now: Instant) -> anyhow::Result<usize> {
        let std_socket = std::net::UdpSocket::bind(SocketAddr::new(self.config.local_ip, 0))?;
        std_socket.set_nonblocking(true)?;
        recv_batch::enable_timestamps(std_socket.as_raw_fd())?;
        let local = std_socket.local_addr()?;
        let mut socket = UdpSocket::from_std(std_socket);
        let pc = peer::build(role, local, now)?;
        // A closed connection's slot is free: its socket is deregistered and its timers disarmed.
        let reused = self.free.last().copied();
        let slot = reused.unwrap_or(self.conns.len());
        self.poll.registry().register(&mut socket, Token(slot), Interest::READABLE)?;
        if reused.is_some() {
            self.free.pop();
        }
        let link = (role == Role::Subscriber && self.config.link.is_active())
            .then(|| Link::new(self.config.link, self.config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id));
        let conn = Conn {
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
        };
        if slot < self.conns.len() {
            // Drops the closed connection that held the slot (its socket and peer connection).
            self.conns[slot] = conn;
        } else {
            self.conns.push(conn);
        }
        self.by_id.insert(id, slot);
        match role {
            Role::Publisher => self.stats.publishers += 1,
            Role::Subscriber => self.stats.subscribers += 1,
        }
        Ok(slot)
    }

    pub(super) fn publish_offer(
        &mut self,
        id: u64,
        spec: PublishSpec,
        label: &str,
        now: Instant,
    ) -> anyhow::Result<PublisherOffer> {
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
            descriptions.push(TrackDescription {
                mid,
                source: TrackSource::Microphone,
                name: "mic".into(),
                layers: vec![],
            });
            state.audio = Some(AudioOut {
                sender,
                ssrc,
                seq: rand::random(),
                timestamp_base: rand::random(),
                payload_type: peer::PT_OPUS,
            });
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

    pub(super) fn publisher_answer(&mut self, id: u64, sdp: String, now: Instant) -> anyhow::Result<()> {
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

    pub(super) fn subscriber_offer(
        &mut self,
        id: u64,
        sdp: String,
        t0: Instant,
        now: Instant,
    ) -> anyhow::Result<String> {
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

    pub(super) fn close_slot(&mut self, slot: usize) {
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
        let id = conn.id;
        self.retired.add(conn);
        for kind in [TimerKind::Pc, TimerKind::Media, TimerKind::Link, TimerKind::Feedback] {
            self.arm(slot, kind, None);
        }
        if self.by_id.get(&id) == Some(&slot) {
            self.by_id.remove(&id);
        }
        self.free.push(slot);
    }

    pub(super) fn close_all(&mut self, now: Instant) {
        // Final figures are taken before the connections go away.
        self.update_gauges(now);
        for slot in 0..self.conns.len() {
            self.close_slot(slot);
        }
    }
}
