//! A connection's life on the shard: created on first use, its stack drained after every input
//! and its timers filed, consent kept (RFC 7675), its state changes and application messages
//! handed to the publisher or subscriber side, and everything it left removed when it closes.

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use sfu_proto::{IceCandidate, ParticipantId};
use std::time::Instant;

use super::ShardCore;
use super::reports::SENDER_REPORT_INTERVAL;
use crate::api::MediaEvent;
use crate::peer_factory::{Direction, IceCredentials, build_peer_connection};
use crate::remote::Remote;
use crate::shard::command::Command;
use crate::shard::conn::{self, Conn, PublisherConn, Role, SubscriberConn};
use crate::shard::consent::{self, ConsentCheck};
use crate::{ConnId, MediaError, TrackKey};

impl ShardCore {
    /// Something authenticated came from the client of `id` (see `consent`).
    pub(super) fn on_heard(&mut self, id: ConnId, now: Instant) {
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
    pub(super) fn on_consent_timeout(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.consent.on_timeout(now) != ConsentCheck::Lapsed {
            return;
        }
        self.metrics.consent_lapses.increment(1);
        tracing::info!(conn = id.0, participant = %conn.owner, direction = ?conn.direction(),
            "nothing heard from the client for {:?}: consent lapsed", consent::CONSENT_TIMEOUT);
        conn.reconnect_on_word = conn.connected;
        self.on_disconnected(id);
    }

    pub(super) fn handle_conn_timeouts(&mut self, now: Instant) {
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
        let due = conn.role.subscriber().and_then(|s| s.bwe.as_ref()).and_then(|bwe| bwe.poll_timeout());
        if due.is_some_and(|due| conn.deadline.is_none_or(|armed| due < armed)) {
            self.mark_dirty(id);
        }
    }

    pub(super) fn drain(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.dirty = false;
        let mut events = Vec::new();
        let mut reads = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(out) = conn.pc.poll_write() {
                progressed = true;
                let peer = Remote::of(out.transport.peer_addr, out.transport.transport_protocol);
                if crate::stun::is_stun(&out.message) {
                    self.demux.on_sent(id, peer, &out.message);
                    // The agent answers only checks that passed its integrity check: the
                    // address they came from is the client's.
                    if crate::stun::is_binding_success(&out.message) && self.demux.validate(id, peer) {
                        tracing::debug!(conn = id.0, %peer, "client address validated by ICE");
                        self.metrics.validated_paths.increment(1);
                        conn.path_changed = true;
                    }
                } else if let Some(outbound) = conn.role.subscriber_mut().and_then(|s| s.outbound.as_mut()) {
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
            && let Some(outbound) = conn.role.subscriber_mut().and_then(|s| s.outbound.as_mut())
            && let Some(remote) = conn::selected_remote(&mut conn.pc)
        {
            outbound.dest = Some(remote);
        }
        let deadline =
            [conn.pc.poll_timeout(), conn.role_deadline(), conn.consent.deadline()].into_iter().flatten().min();
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
        // Handled by `settle`, one at a time, so it can stop between them for the outputs.
        self.pending_reads.extend(reads.into_iter().map(|message| (id, message)));
    }

    pub(super) fn remote_candidate(&mut self, id: ConnId, candidate: IceCandidate) -> Result<(), MediaError> {
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

    pub(super) fn send_data(&mut self, id: ConnId, text: bool, payload: Bytes, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Some(channel) = conn.role.publisher().and_then(|p| p.data_channel) else { return };
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

    pub(super) fn close_conn(&mut self, id: ConnId, now: Instant) {
        let Some(mut conn) = self.conns.remove(&id) else { return };
        let _ = conn.pc.close();
        self.demux.remove(id);
        if let Some(deadline) = conn.deadline {
            self.timers.remove(&(deadline, id));
        }
        if let Role::Subscriber(subscriber) = conn.role {
            for key in subscriber.subscribed {
                self.unlink_subscriber(id, key, now);
            }
        }
        let owned: Vec<TrackKey> =
            self.published.iter().filter(|(_, p)| p.conn() == Some(id)).map(|(k, _)| *k).collect();
        for key in owned {
            self.forget_published(key);
        }
    }

    pub(super) fn ensure_conn(
        &mut self,
        id: ConnId,
        owner: ParticipantId,
        direction: Direction,
        now: Instant,
    ) -> Result<&mut Conn, MediaError> {
        if !self.conns.contains_key(&id) {
            let credentials = IceCredentials::for_shard(self.index);
            let estimate = direction == Direction::Egress && self.estimate_bandwidth;
            let local = crate::peer_factory::LocalCandidates { udp: self.announce, tcp: self.tcp_announce };
            let pc = build_peer_connection(direction, &credentials, local, estimate, now)?;
            self.demux.set_ufrag(id, &credentials.ufrag);
            let role = match direction {
                Direction::Ingress => Role::Publisher(PublisherConn::default()),
                Direction::Egress => {
                    Role::Subscriber(SubscriberConn::new(estimate.then(|| super::egress::EgressBwe::new(now))))
                }
            };
            self.conns.insert(id, Conn::new(owner, role, pc, now));
        }
        self.conns.get_mut(&id).ok_or(MediaError::NoConnection)
    }

    pub(super) fn handle_event(&mut self, id: ConnId, event: RTCPeerConnectionEvent, now: Instant) {
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                if let Some(conn) = self.conns.get(&id) {
                    tracing::info!(conn = id.0, participant = %conn.owner, direction = ?conn.direction(), ?state, "peer connection state");
                }
                match state {
                    RTCPeerConnectionState::Connected => self.on_connected(id, now),
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => self.on_disconnected(id),
                    _ => {}
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let Some(conn) = self.conns.get_mut(&id) else { return };
                let transceivers: Vec<_> = conn.pc.get_transceivers().collect();
                let mid = transceivers.into_iter().find_map(|t| {
                    let transceiver = conn.pc.rtp_transceiver(t)?;
                    (transceiver.receiver() == Some(init.receiver_id)).then(|| transceiver.mid().clone())?
                });
                let Role::Publisher(publisher) = &mut conn.role else { return };
                if let Some(key) = mid.and_then(|m| publisher.published_mids.get(&m).copied()) {
                    publisher.ingress_tracks.insert(init.track_id.to_string(), key);
                }
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(channel)) => {
                if let Some(publisher) = self.conns.get_mut(&id).and_then(|c| c.role.publisher_mut()) {
                    publisher.data_channel = Some(channel);
                }
            }
            _ => {}
        }
    }

    /// An application message out of a connection's stack; `arrived` is when its datagram was
    /// read from the socket.
    pub(super) fn handle_message(&mut self, id: ConnId, message: RTCMessage, arrived: Instant, now: Instant) {
        match message {
            RTCMessage::RtpPacket(track, packet) => self.on_published_rtp(id, &track, packet, arrived, now),
            // Publishers' sender reports are consumed by the stack; only feedback about what we
            // send matters here.
            RTCMessage::RtcpPacket(_, packets)
                if self.conns.get(&id).is_some_and(|c| matches!(c.role, Role::Subscriber(_))) =>
            {
                self.on_subscriber_rtcp(id, packets, now);
            }
            RTCMessage::DataChannelMessage(_, message) => {
                self.emit(MediaEvent::Data { conn: id, text: message.is_string, payload: message.data.freeze() });
            }
            _ => {}
        }
    }

    pub(super) fn on_connected(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.connected = true;
        if let Some(subscriber) = conn.role.subscriber_mut() {
            subscriber.sender_report_at = Some(now + SENDER_REPORT_INTERVAL / 2);
        }
        let mut requests = Vec::new();
        for key in conn.role.subscriber().map(|s| s.subscribed.as_slice()).unwrap_or_default() {
            let Some(subscription) = self.fanouts.get_mut(key).and_then(|f| f.get_mut(id)) else { continue };
            subscription.connected = true;
            subscription.forwarder.on_connected(now);
            if let Some(layer) = subscription.forwarder.poll_keyframe_request(now) {
                requests.push((*key, layer));
            }
        }
        for (key, layer) in requests {
            self.send_to_shard(key.shard(), Command::KeyframeRequest { key, layer }, now);
        }
        // Its timers changed (sender reports).
        self.mark_dirty(id);
        self.emit(MediaEvent::Connected { conn: id });
    }

    /// The connection failed, closed, or its client went quiet (see `consent`): nothing is
    /// sent to it, and the control plane is told.
    pub(super) fn on_disconnected(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.connected = false;
            for key in conn.role.subscriber().map(|s| s.subscribed.as_slice()).unwrap_or_default() {
                if let Some(subscription) = self.fanouts.get_mut(key).and_then(|f| f.get_mut(id)) {
                    subscription.connected = false;
                }
            }
        }
        self.emit(MediaEvent::Disconnected { conn: id });
    }
}
