//! Publishing and subscribing: tracks enter the room from a publisher's offer and are added to
//! every other participant's subscriber connection.

use sfu_proto::{
    ErrorCode, LayerPreference, ParticipantId, ServerMessage, SubscriptionSettings, TrackDescription, TrackId,
    TrackInfo, TrackSource,
};
use sfu_transport::{DownTrackSpec, PublisherAnswer};

use super::request_error::RequestError;
use super::{Hub, MediaControl, Room, TrackEntry, new_id};

impl<M: MediaControl> Hub<M> {
    /// Applies a publisher offer; returns the SDP answer. New tracks are announced and
    /// subscribed to by the room after the answer is queued to the publisher.
    pub async fn publisher_offer(
        &self,
        room: &mut Room,
        id: &ParticipantId,
        sdp: String,
        descriptions: Vec<TrackDescription>,
    ) -> Result<String, RequestError> {
        let p = room.participants.get(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        // A data-channel-only connection is how any participant receives room data; sending on
        // it is checked per message (publish_data). Media needs the publish grant.
        if !p.grants.publish && offers_media(&sdp) {
            return Err(RequestError::new(ErrorCode::NotAllowed, "token does not grant publishing media"));
        }
        self.check_publisher_offer(&sdp)?;
        let PublisherAnswer { sdp: answer, added, removed } =
            self.media.publisher_offer(p.publisher_conn, id.clone(), sdp, descriptions.clone()).await?;
        p.send(ServerMessage::Answer { sdp: answer.clone() });
        if let Some(candidate) = super::negotiate::local_candidate(&answer) {
            p.send(ServerMessage::Candidate { target: sfu_proto::PeerRole::Publisher, candidate });
        }

        let removed_entries: Vec<TrackEntry> = p.tracks.iter().filter(|t| removed.contains(&t.key)).cloned().collect();
        if !removed_entries.is_empty() {
            if let Some(p) = room.participants.get_mut(id) {
                p.tracks.retain(|t| !removed.contains(&t.key));
            }
            self.unpublish_tracks(room, id, &removed_entries).await;
        }

        for track in added {
            let description = descriptions.iter().find(|d| d.mid == track.mid);
            let entry = TrackEntry {
                encoding: None,
                info: TrackInfo {
                    id: TrackId(new_id("TR")),
                    kind: track.kind,
                    source: description.map(|d| d.source).unwrap_or(default_source(track.kind)),
                    name: description.map(|d| d.name.clone()).unwrap_or_default(),
                    muted: false,
                    layers: track.layers.clone(),
                },
                key: track.key,
                mime: track.mime.clone(),
                clock_rate: track.clock_rate,
            };
            tracing::info!(room = %room.id.escaped(), participant = %id, track = %entry.info.id, mime = %entry.mime, layers = entry.info.layers.len(), "track published");
            if let Some(p) = room.participants.get_mut(id) {
                p.tracks.push(entry.clone());
            }
            // The publisher hears it too: that is how it learns the id of its own track.
            let published = ServerMessage::TrackPublished { participant_id: id.clone(), track: entry.info.clone() };
            for p in room.participants.values() {
                p.send(published.clone());
            }
            self.announce_published(room, id, &entry);
            let subscribers: Vec<ParticipantId> =
                room.participants.values().filter(|s| &s.id != id && s.subscribes()).map(|s| s.id.clone()).collect();
            for subscriber in subscribers {
                self.subscribe(room, &subscriber, id, &entry).await;
            }
        }
        let subscribers: Vec<ParticipantId> = room.participants.keys().filter(|s| *s != id).cloned().collect();
        for subscriber in subscribers {
            self.negotiate(room, &subscriber).await;
        }
        self.update_gauges(room);
        Ok(answer)
    }

    /// Adds one track to a subscriber's connection (negotiation happens separately).
    pub async fn subscribe(
        &self,
        room: &mut Room,
        subscriber: &ParticipantId,
        publisher: &ParticipantId,
        track: &TrackEntry,
    ) {
        let Some(s) = room.participants.get(subscriber) else { return };
        if !s.subscribes() || s.subscribed.contains(&track.key) {
            return;
        }
        // A room that mixes its audio: the mix carries this track to everyone instead.
        if track.info.kind == sfu_proto::TrackKind::Audio
            && room.audio_mix
            && self.mixed_instead(room, publisher, track.key).await
        {
            return;
        }
        let Some(s) = room.participants.get(subscriber) else { return };
        let settings = s.settings.get(&track.info.id).cloned().unwrap_or(SubscriptionSettings {
            track_id: track.info.id.clone(),
            layer: LayerPreference::Auto,
            max_width: None,
            max_height: None,
            paused: false,
        });
        let spec = DownTrackSpec {
            key: track.key,
            track_id: track.info.id.clone(),
            publisher: publisher.clone(),
            kind: track.info.kind,
            mime: track.mime.clone(),
            clock_rate: track.clock_rate,
            layers: track.info.layers.clone(),
            settings,
            muted: track.info.muted,
            among_loudest: track.info.kind != sfu_proto::TrackKind::Audio || room.audio_forwarded(publisher),
            source: track.info.source,
        };
        match self.media.subscriber_add_track(s.subscriber_conn, subscriber.clone(), spec).await {
            Ok(()) => {
                if let Some(s) = room.participants.get_mut(subscriber) {
                    s.subscribed.insert(track.key);
                    s.has_subscriber_conn = true;
                }
            }
            Err(e) => {
                tracing::warn!(room = %room.id.escaped(), participant = %subscriber, error = %e, "subscribe failed")
            }
        }
    }

    /// A local publisher's tracks are gone: the peers hear of it, and the room as below.
    pub async fn unpublish_tracks(&self, room: &mut Room, publisher: &ParticipantId, tracks: &[TrackEntry]) {
        for track in tracks {
            tracing::info!(room = %room.id.escaped(), participant = %publisher, track = %track.info.id, "track unpublished");
            self.announce_unpublished(room, publisher, track);
            room.relayed_to.remove(&track.info.id);
        }
        self.withdraw_tracks(room, publisher, tracks).await;
    }

    /// Takes tracks (local, or relayed here) out of every subscription and tells the room they
    /// are gone.
    pub async fn withdraw_tracks(&self, room: &mut Room, publisher: &ParticipantId, tracks: &[TrackEntry]) {
        if tracks.is_empty() {
            return;
        }
        for track in tracks {
            self.unmix(room, track.key);
        }
        let others: Vec<ParticipantId> = room.participants.keys().filter(|p| *p != publisher).cloned().collect();
        for other in &others {
            for track in tracks {
                let Some(s) = room.participants.get_mut(other) else { continue };
                if s.subscribed.remove(&track.key) {
                    let _ = self.media.subscriber_remove_track(s.subscriber_conn, track.key).await;
                }
                s.send(ServerMessage::TrackUnpublished {
                    participant_id: publisher.clone(),
                    track_id: track.info.id.clone(),
                });
            }
            self.negotiate(room, other).await;
        }
        for viewer in room.viewers.values() {
            for track in tracks {
                let _ = self.media.subscriber_remove_track(viewer.conn, track.key).await;
            }
        }
        // Its shard stops reporting an unpublished track's level, falling edge included: without
        // this the publisher would stay a speaker. Another audio track of theirs reports again.
        if tracks.iter().any(|t| t.info.kind == sfu_proto::TrackKind::Audio) {
            room.set_level(publisher.clone(), 0.0);
            self.announce_speakers(room);
        }
    }

    pub fn set_subscription(
        &self,
        room: &mut Room,
        id: &ParticipantId,
        settings: SubscriptionSettings,
    ) -> Result<(), RequestError> {
        let key = room
            .any_track(&settings.track_id)
            .map(|(_, t)| t.key)
            .ok_or_else(|| RequestError::new(ErrorCode::UnknownTrack, format!("no track {}", settings.track_id)))?;
        let p = room.participants.get_mut(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        if p.subscribed.contains(&key) {
            self.media.set_subscription(p.subscriber_conn, key, settings.clone());
        }
        p.settings.insert(settings.track_id.clone(), settings);
        Ok(())
    }

    pub fn set_muted(
        &self,
        room: &mut Room,
        id: &ParticipantId,
        track_id: &TrackId,
        muted: bool,
    ) -> Result<(), RequestError> {
        let p = room.participants.get_mut(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        let track =
            p.tracks.iter_mut().find(|t| &t.info.id == track_id).ok_or_else(|| {
                RequestError::new(ErrorCode::UnknownTrack, format!("you publish no track {track_id}"))
            })?;
        track.info.muted = muted;
        self.media.set_muted(track.key, muted);
        let track = track.clone();
        self.announce_muted(room, &track);
        room.broadcast_except(
            id,
            &ServerMessage::TrackMuted { participant_id: id.clone(), track_id: track_id.clone(), muted },
        );
        Ok(())
    }
}

fn default_source(kind: sfu_proto::TrackKind) -> TrackSource {
    match kind {
        sfu_proto::TrackKind::Audio => TrackSource::Microphone,
        sfu_proto::TrackKind::Video => TrackSource::Camera,
    }
}

/// Whether an SDP offer has audio or video sections (not only a data channel).
fn offers_media(sdp: &str) -> bool {
    sdp.lines().any(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
}
