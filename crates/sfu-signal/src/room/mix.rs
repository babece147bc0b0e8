//! MCU audio, room side (docs/topologies.md, "Mixing on the server"): in a room whose audio is
//! mixed, the media plane makes one mixed track (`MediaPlane::add_mix`) that every subscriber
//! receives in place of the speakers' tracks, and every audio track that a subscriber would
//! otherwise get, local or relayed from another node, is an input of the mix instead.

use sfu_proto::{LayerPreference, ParticipantId, SubscriptionSettings, TrackId, TrackKind, TrackSource};
use sfu_transport::{DownTrackSpec, TrackKey};
use std::collections::HashSet;

use super::{Hub, MediaControl, Room, new_id};

/// The stream id of the mixed track in subscribers' SDP (the signaling names its participant
/// as the empty id: the room itself).
const MIX_STREAM: &str = "mix";

/// A room's mix, as the control plane knows it.
#[derive(Debug)]
pub struct RoomMix {
    pub key: TrackKey,
    pub track_id: TrackId,
    /// The audio tracks mixed.
    pub inputs: HashSet<TrackKey>,
}

impl<M: MediaControl> Hub<M> {
    /// The room's mix, started on first need; `None` when the room does not mix or the media
    /// plane cannot (a build without the `audio-mix` feature: said once, then forwarded as usual).
    async fn ensure_mix(&self, room: &mut Room) -> Option<TrackKey> {
        if !room.audio_mix {
            return None;
        }
        if let Some(mix) = &room.mix {
            return Some(mix.key);
        }
        match self.media.add_mix().await {
            Ok(key) => {
                tracing::info!(room = %room.id.escaped(), ?key, "room audio mixed");
                room.mix = Some(RoomMix { key, track_id: TrackId(new_id("TR")), inputs: HashSet::new() });
                Some(key)
            }
            Err(e) => {
                tracing::error!(room = %room.id.escaped(), error = %e, "audio mixing refused: the room forwards its audio");
                room.audio_mix = false;
                None
            }
        }
    }

    /// Whether `track` goes into the room's mix rather than to subscribers (and puts it there).
    pub(super) async fn mixed_instead(&self, room: &mut Room, publisher: &ParticipantId, track: TrackKey) -> bool {
        let Some(mix) = self.ensure_mix(room).await else { return false };
        let Some(state) = room.mix.as_mut() else { return false };
        if state.inputs.insert(track) {
            match self.media.add_mix_input(mix, track, publisher.clone()).await {
                Ok(()) => {
                    tracing::debug!(room = %room.id.escaped(), participant = %publisher, ?track, "audio mixed in")
                }
                Err(e) => {
                    tracing::warn!(room = %room.id.escaped(), participant = %publisher, error = %e, "audio not mixed");
                    state.inputs.remove(&track);
                }
            }
        }
        true
    }

    /// The track `key` is gone: out of the mix.
    pub(super) fn unmix(&self, room: &mut Room, key: TrackKey) {
        if let Some(mix) = room.mix.as_mut()
            && mix.inputs.remove(&key)
        {
            self.media.remove_mix_input(mix.key, key);
        }
    }

    /// Subscribes `subscriber` to the room's mix (negotiation is the caller's).
    pub(super) async fn subscribe_to_mix(&self, room: &mut Room, subscriber: &ParticipantId) {
        let Some(key) = self.ensure_mix(room).await else { return };
        let Some(track_id) = room.mix.as_ref().map(|m| m.track_id.clone()) else { return };
        let Some(s) = room.participants.get(subscriber) else { return };
        if !s.subscribes() || s.subscribed.contains(&key) {
            return;
        }
        let spec = DownTrackSpec {
            key,
            track_id: track_id.clone(),
            publisher: ParticipantId(MIX_STREAM.into()),
            kind: TrackKind::Audio,
            mime: "audio/opus".into(),
            clock_rate: 48_000,
            layers: Vec::new(),
            settings: SubscriptionSettings {
                track_id,
                layer: LayerPreference::Auto,
                max_width: None,
                max_height: None,
                paused: false,
            },
            muted: false,
            among_loudest: true,
            source: TrackSource::Microphone,
        };
        match self.media.subscriber_add_track(s.subscriber_conn, subscriber.clone(), spec).await {
            Ok(()) => {
                if let Some(s) = room.participants.get_mut(subscriber) {
                    s.subscribed.insert(key);
                    s.has_subscriber_conn = true;
                }
            }
            Err(e) => {
                tracing::warn!(room = %room.id.escaped(), participant = %subscriber, error = %e, "mix subscription failed")
            }
        }
    }

    /// The room closed: its mix ends.
    pub(super) fn end_mix(&self, room: &Room) {
        if let Some(mix) = &room.mix {
            self.media.remove_mix(mix.key);
        }
    }
}
