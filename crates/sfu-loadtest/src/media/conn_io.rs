//! Per-connection handling of the media workers: feeding datagrams to a peer connection and
//! acting on what it reports (state changes, tracks, RTP/RTCP) and on media timers. Free
//! functions, so a worker can hand one connection over while its other fields stay usable.

use super::*;
use crate::stats::WorkerStats;
use bytes::BytesMut;
use fast_rx::Opened;

/// Hands a datagram to the subscriber's own path when it is media it can open, else to the
/// stack. Returns true when the stack (or a PLI) has output to drain.
pub(super) fn feed(conn: &mut Conn, data: &[u8], from: SocketAddr, now: Instant, ctx: &mut Ctx<'_>) -> bool {
    if let Some(fast) = conn.fast.as_mut() {
        match fast.open(data) {
            Opened::Media(packet) => {
                ctx.stats.rx_fast += 1;
                let wrote = on_rtp(conn, &packet, now, ctx);
                if let Some(fast) = conn.fast.as_mut() {
                    fast.observe(packet, now);
                }
                return wrote;
            }
            Opened::Rtx { rtx, original } => {
                ctx.stats.rx_rtx += 1;
                let wrote = original.as_ref().is_some_and(|packet| on_rtp(conn, packet, now, ctx));
                if let Some(fast) = conn.fast.as_mut() {
                    fast.observe(rtx, now);
                    if let Some(packet) = original {
                        fast.observe(packet, now);
                    }
                }
                return wrote;
            }
            Opened::ToStack(Some(why)) => {
                if !fast.is_open() {
                    ctx.stats.fast_rx_off += 1;
                }
                if debug() {
                    eprintln!("conn {}: {why}", conn.id);
                }
            }
            Opened::ToStack(None) => {}
        }
    }
    let message = TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: conn.local,
            peer_addr: from,
            transport_protocol: TransportProtocol::UDP,
            ecn: None,
        },
        message: BytesMut::from(data),
    };
    let _ = conn.pc.handle_read(message);
    adopt_keys(conn);
    true
}

/// Right after the stack read a datagram that completed a subscriber's DTLS handshake: its SRTP
/// keys were noted while the stack derived them, and its media is opened here from now on.
fn adopt_keys(conn: &mut Conn) {
    if !sfu_srtp::has_notes() {
        return;
    }
    let keys = sfu_srtp::take_session_keys();
    let Some(fast) = conn.fast.as_mut() else { return };
    match keys.and_then(|k| k.remote) {
        Some(remote) if !fast.is_open() => {
            if let Err(e) = fast.adopt(&remote) {
                eprintln!("conn {}: no SRTP context of its own ({e}); the stack opens its media", conn.id);
            }
        }
        _ => {}
    }
}

/// Runs the subscriber's feedback chain and sends what it produced (transport-cc, NACKs,
/// receiver reports) through the stack, which protects it as SRTCP. Returns when to run next.
pub(super) fn send_feedback(conn: &mut Conn, now: Instant, stats: &mut WorkerStats) -> Option<Instant> {
    let fast = conn.fast.as_mut()?;
    fast.handle_timeout(now);
    let receiver = conn.subscriber.as_ref().and_then(|s| s.receivers.values().next().copied());
    while let Some(packets) = fast.poll_feedback() {
        let Some(mut r) = receiver.and_then(|id| conn.pc.rtp_receiver(id)) else { continue };
        if r.write_rtcp(now, packets).is_err() {
            stats.send_errors += 1;
        }
    }
    conn.fast.as_mut()?.poll_timeout()
}

/// Returns true when the publisher just connected (its media clock should start).
pub(super) fn on_event(conn: &mut Conn, event: RTCPeerConnectionEvent, now: Instant, ctx: &mut Ctx<'_>) -> bool {
    match event {
        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
            RTCPeerConnectionState::Connected => {
                conn.connected = true;
                conn.ever_connected = true;
                if debug() && conn.id < 12 {
                    let since = conn.subscriber.as_ref().map(|s| now.duration_since(s.t0).as_secs_f64() * 1000.0);
                    eprintln!("conn {} connected, {since:?} ms after its websocket connect", conn.id);
                }
                conn.failed = false;
                if let Some(publisher) = conn.publisher.as_mut()
                    && publisher.started.is_none()
                {
                    publisher.started = Some(now);
                    return true;
                }
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed | RTCPeerConnectionState::Disconnected => {
                if conn.connected || state == RTCPeerConnectionState::Failed {
                    conn.failed = state != RTCPeerConnectionState::Closed;
                }
                if conn.connected && state != RTCPeerConnectionState::Closed {
                    ctx.stats.disconnects += 1;
                    if debug() {
                        eprintln!(
                            "conn {} ({:?}) {state:?} at {:.3}s",
                            conn.id,
                            conn.role,
                            now.duration_since(ctx.epoch).as_secs_f64()
                        );
                    }
                }
                conn.connected = false;
            }
            _ => {}
        },
        RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) if debug() && conn.id < 12 => {
            let since = conn.subscriber.as_ref().map(|s| now.duration_since(s.t0).as_secs_f64() * 1000.0);
            eprintln!("conn {} ice {state:?}, {since:?} ms after its websocket connect", conn.id);
        }
        RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
            if let Some(sub) = conn.subscriber.as_mut() {
                sub.receivers.insert(init.ssrc, init.receiver_id);
            }
            if let Some(fast) = conn.fast.as_mut() {
                fast.announce(init.ssrc);
            }
        }
        _ => {}
    }
    false
}

/// Returns true when handling wrote something (a PLI) that needs draining.
pub(super) fn on_message(conn: &mut Conn, message: RTCMessage, now: Instant, ctx: &mut Ctx<'_>) -> bool {
    match message {
        RTCMessage::RtpPacket(_, packet) => {
            let wrote = on_rtp(conn, &packet, now, ctx);
            if let Some(fast) = conn.fast.as_mut() {
                fast.observe(packet, now);
            }
            wrote
        }
        RTCMessage::RtcpPacket(_, packets) => {
            if let Some(fast) = conn.fast.as_mut() {
                fast.observe_rtcp(packets, now);
                return false;
            }
            let Some(publisher) = conn.publisher.as_mut() else { return false };
            let Some(video) = publisher.video.as_mut() else { return false };
            for p in &packets {
                let any = p.as_any();
                let mut ssrcs = Vec::new();
                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                    ssrcs.push(pli.media_ssrc);
                } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                    ssrcs.extend(fir.fir.iter().map(|e| e.ssrc));
                }
                for ssrc in ssrcs {
                    if let Some(layer) = video.ssrcs.iter().position(|s| *s == ssrc) {
                        ctx.stats.plis_received += 1;
                        let recent =
                            video.last_keyframe[layer].is_some_and(|at| now.duration_since(at) < MIN_KEYFRAME_INTERVAL);
                        if !recent {
                            video.keyframe_wanted[layer] = true;
                        }
                    }
                }
            }
            false
        }
        _ => false,
    }
}

pub(super) fn on_rtp(conn: &mut Conn, packet: &rtc::rtp::Packet, now: Instant, ctx: &mut Ctx<'_>) -> bool {
    let Some(sub) = conn.subscriber.as_mut() else { return false };
    let ssrc = packet.header.ssrc;
    if debug_mode() == "twcc" {
        let tw = packet.header.get_extension(1).map(|b| u16::from_be_bytes([b[0], b.get(1).copied().unwrap_or(0)]));
        eprintln!(
            "rtp ssrc {ssrc:08x} pt {} seq {} twcc {tw:?} len {} pad {}",
            packet.header.payload_type,
            packet.header.sequence_number,
            packet.payload.len(),
            packet.header.padding
        );
    }
    let trailer = synth::read_trailer(&packet.payload);
    let video = trailer.map_or(packet.header.payload_type == peer::PT_VP8, |(_, kind)| kind != KIND_AUDIO);
    let stream = sub.streams.entry(ssrc).or_insert_with(|| StreamRx::new(video));
    match stream.record(packet.header.sequence_number, now) {
        Arrival::Duplicate => return false,
        Arrival::Fresh | Arrival::TooOld => {}
    }
    ctx.stats.rx_packets += 1;
    ctx.stats.rx_bytes += packet.payload.len() as u64;
    sub.last_media = Some(now);
    if sub.first_media.is_none() {
        sub.first_media = Some(now);
        if debug() && conn.id < 12 {
            eprintln!(
                "conn {} first media {:.1} ms after its websocket connect (video={video})",
                conn.id,
                now.duration_since(sub.t0).as_secs_f64() * 1000.0
            );
        }
        ctx.stats.joins_ms.push(now.duration_since(sub.t0).as_secs_f64() * 1000.0);
    }
    if let Some((send_ns, kind)) = trailer {
        let now_ns = now.duration_since(ctx.epoch).as_nanos() as u64;
        ctx.latency.record(now_ns.saturating_sub(send_ns) / 1000);
        if let Some(count) = ctx.stats.rx_layers.get_mut(usize::from(kind)) {
            *count += 1;
        }
    }
    if !video {
        ctx.stats.rx_audio += 1;
        return false;
    }
    ctx.stats.rx_video += 1;
    let window = conn.link.as_ref().map_or(Duration::from_millis(300), |l| l.repair_window());
    if stream.expire_gaps(now, window) {
        stream.needs_keyframe = true;
    }
    if synth::is_vp8_keyframe(&packet.payload) {
        stream.needs_keyframe = false;
        sub.keyframe = true;
        ctx.stats.keyframes_rx += 1;
        return false;
    }
    // Like a browser's decoder: without a keyframe (or after an unrepaired loss) ask for one,
    // once the stream had a moment to deliver the keyframe the server requests on connect.
    let waited = stream.first_at.is_some_and(|t| now.duration_since(t) > Duration::from_millis(200));
    if stream.needs_keyframe && waited && stream.last_pli.is_none_or(|t| now.duration_since(t) >= PLI_INTERVAL) {
        stream.last_pli = Some(now);
        if let Some(receiver) = sub.receivers.get(&ssrc).copied()
            && let Some(mut r) = conn.pc.rtp_receiver(receiver)
        {
            let pli = PictureLossIndication { sender_ssrc: 1, media_ssrc: ssrc };
            if r.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                ctx.stats.plis_sent += 1;
                return true;
            }
        }
    }
    false
}

/// Sends the publisher's due frames and audio packets; returns when to run next.
/// A publisher sends its video at this percentage of the total video bitrate (WebRTC's pacer
/// default is 2.5 times), so a keyframe takes a few tens of milliseconds to leave, a delta frame
/// a few.
const PACING_PERCENT: u64 = 250;

pub(super) fn media_tick(conn: &mut Conn, now: Instant, ctx: &mut Ctx<'_>) -> Option<Instant> {
    if !conn.connected {
        return None;
    }
    let publisher = conn.publisher.as_mut()?;
    let started = publisher.started?;
    let frame_interval = Duration::from_nanos(1_000_000_000 / u64::from(FPS));
    let audio_interval = Duration::from_nanos(1_000_000_000 / u64::from(AUDIO_PACKETS_PER_SEC));
    let send_ns = now.duration_since(ctx.epoch).as_nanos() as u64;
    let mut next = None::<Instant>;

    if let Some(video) = publisher.video.as_mut() {
        let pacing_bps = PACING_PERCENT * LAYERS.iter().map(|l| u64::from(l.kbps) * 10).sum::<u64>();
        let mut due = started + frame_interval * publisher.video_frames as u32;
        if now.duration_since(due) > MAX_CATCH_UP {
            let behind = (now.duration_since(due).as_nanos() / frame_interval.as_nanos()) as u64;
            publisher.video_frames += behind;
            ctx.stats.frames_skipped += behind;
            due = started + frame_interval * publisher.video_frames as u32;
        }
        while due <= now {
            let frame = publisher.video_frames;
            let periodic = frame % KEYFRAME_EVERY_FRAMES == 0;
            let timestamp = video.timestamp_base.wrapping_add((frame * u64::from(VIDEO_CLOCK / FPS)) as u32);
            for (layer, spec) in LAYERS.iter().enumerate() {
                let keyframe = periodic || video.keyframe_wanted[layer];
                video.keyframe_wanted[layer] = false;
                if keyframe {
                    video.last_keyframe[layer] = Some(now);
                }
                let (key_size, delta_size) = video.sizes[layer];
                let payloads = synth::vp8_frame(
                    spec,
                    layer as u8,
                    video.picture_id,
                    keyframe,
                    if keyframe { key_size } else { delta_size },
                    send_ns,
                );
                let last = payloads.len() - 1;
                for (i, payload) in payloads.into_iter().enumerate() {
                    let mut header = rtc::rtp::header::Header {
                        version: 2,
                        marker: i == last,
                        payload_type: video.payload_type,
                        sequence_number: video.seqs[layer],
                        timestamp,
                        ssrc: video.ssrcs[layer],
                        ..Default::default()
                    };
                    video.seqs[layer] = video.seqs[layer].wrapping_add(1);
                    if video.mid_ext.is_some() || video.rid_ext.is_some() {
                        header.extension = true;
                        header.extension_profile = rtc::rtp::header::EXTENSION_PROFILE_ONE_BYTE;
                        if let Some(id) = video.mid_ext {
                            let _ = header.set_extension(id, bytes::Bytes::copy_from_slice(video.mid.as_bytes()));
                        }
                        if let Some(id) = video.rid_ext {
                            let _ = header.set_extension(id, bytes::Bytes::from_static(LAYERS[layer].rid.as_bytes()));
                        }
                    }
                    // Paced like a browser's sender: a frame leaves as a train of packets
                    // at a multiple of the video bitrate, not as one burst.
                    let at = publisher.paced.back().map_or(now, |(last, _)| (*last).max(now));
                    let at = at + Duration::from_nanos(payload.len() as u64 * 8 * 1_000_000_000 / pacing_bps);
                    publisher.paced.push_back((at, rtc::rtp::Packet { header, payload }));
                }
            }
            video.picture_id = (video.picture_id + 1) & 0x7fff;
            publisher.video_frames += 1;
            due = started + frame_interval * publisher.video_frames as u32;
        }
        while let Some((at, _)) = publisher.paced.front()
            && *at <= now
        {
            let Some((_, mut packet)) = publisher.paced.pop_front() else { break };
            // Latency counts from when the packet leaves, as in a browser.
            packet.payload = synth::restamp(&packet.payload, send_ns);
            if let Some(mut sender) = conn.pc.rtp_sender(video.sender)
                && sender.write_rtp(now, packet).is_err()
            {
                ctx.stats.send_errors += 1;
            }
        }
        next = Some(publisher.paced.front().map_or(due, |(at, _)| (*at).min(due)));
    }

    if let Some(audio) = publisher.audio.as_mut() {
        let mut due = started + audio_interval * publisher.audio_packets as u32;
        if now.duration_since(due) > MAX_CATCH_UP {
            let behind = (now.duration_since(due).as_nanos() / audio_interval.as_nanos()) as u64;
            publisher.audio_packets += behind;
            due = started + audio_interval * publisher.audio_packets as u32;
        }
        while due <= now {
            let n = publisher.audio_packets;
            let header = rtc::rtp::header::Header {
                version: 2,
                marker: n == 0,
                payload_type: audio.payload_type,
                sequence_number: audio.seq,
                timestamp: audio
                    .timestamp_base
                    .wrapping_add((n * u64::from(AUDIO_CLOCK / AUDIO_PACKETS_PER_SEC)) as u32),
                ssrc: audio.ssrc,
                ..Default::default()
            };
            audio.seq = audio.seq.wrapping_add(1);
            let packet = rtc::rtp::Packet { header, payload: synth::opus_packet(send_ns) };
            if let Some(mut sender) = conn.pc.rtp_sender(audio.sender)
                && sender.write_rtp(now, packet).is_err()
            {
                ctx.stats.send_errors += 1;
            }
            publisher.audio_packets += 1;
            due = started + audio_interval * publisher.audio_packets as u32;
        }
        next = Some(next.map_or(due, |n| n.min(due)));
    }
    next
}
