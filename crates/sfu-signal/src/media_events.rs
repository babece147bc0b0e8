//! Reacts to what the media plane reports: hands data-channel messages to their room's relay
//! (crate::data_relay), tracks connection state, and tells subscribers when a track is paused
//! for bandwidth.

use sfu_transport::MediaEvent;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::data_relay::DataRelay;
use crate::room::{Hub, ParticipantKind};

pub async fn run(hub: Arc<Hub>, mut events: mpsc::UnboundedReceiver<MediaEvent>) {
    let mut data = DataRelay::new(hub.limits());
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::Data { conn, text, payload } => data.dispatch(&hub, conn, text, payload),
            MediaEvent::Connected { conn } => hub.set_connected(conn, true),
            MediaEvent::Disconnected { conn } => {
                data.forget(conn);
                on_disconnected(&hub, conn).await
            }
            MediaEvent::StreamState { conn, key, paused } => stream_state(&hub, conn, key, paused).await,
            MediaEvent::EncodeLayers { conn, key, layers } => encode_layers(&hub, conn, key, layers).await,
            MediaEvent::AudioLevels { levels } => hub.on_audio_levels(levels).await,
            MediaEvent::RelayDemand { key, used, wanted } => hub.on_relay_demand(key, used, wanted).await,
            MediaEvent::LayersActive { key, layers } => hub.on_layers_active_here(key, layers).await,
        }
    }
}

/// A WHIP publisher or WHEP viewer has no socket to resume from: when its media connection
/// fails, closes or never comes up, it has left. (Signaling participants are governed by their
/// socket and the departure timeout.)
async fn on_disconnected(hub: &Hub, conn: sfu_transport::ConnId) {
    hub.set_connected(conn, false);
    hub.on_viewer_disconnected(conn).await;
    let Some((room_id, id)) = hub.owner_of(conn) else { return };
    let Some(room_ref) = hub.room(&room_id) else { return };
    let mut room = room_ref.lock().await;
    let is_whip =
        room.participants.get(&id).is_some_and(|p| p.kind == ParticipantKind::Whip && p.publisher_conn == conn);
    if is_whip {
        hub.remove_participant(&mut room, &id, sfu_proto::LeaveReason::Left).await;
    }
}

/// Tells a subscriber that the server paused or resumed one of its tracks.
async fn stream_state(
    hub: &Hub,
    conn: sfu_transport::ConnId,
    key: sfu_transport::TrackKey,
    paused: Option<sfu_core::PauseReason>,
) {
    let Some((room_id, subscriber)) = hub.owner_of(conn) else { return };
    let Some(room_ref) = hub.room(&room_id) else { return };
    let room = room_ref.lock().await;
    let Some((publisher, track)) = room.any_track_by_key(key) else { return };
    let message = sfu_proto::ServerMessage::StreamState {
        participant_id: publisher,
        track_id: track.id.clone(),
        state: if paused.is_some() { sfu_proto::StreamState::Paused } else { sfu_proto::StreamState::Active },
        reason: paused.map(|r| r.as_str().to_owned()),
    };
    tracing::info!(%subscriber, track = %track.id, ?paused, "stream state");
    if let Some(p) = room.participants.get(&subscriber) {
        p.send(message);
    }
}

/// Dynacast: tells a publisher which simulcast layers of its track anyone wants, and keeps that
/// to repeat after a resume.
async fn encode_layers(
    hub: &Hub,
    conn: sfu_transport::ConnId,
    key: sfu_transport::TrackKey,
    layers: Vec<(sfu_proto::Rid, bool)>,
) {
    let Some((room_id, publisher)) = hub.owner_of(conn) else { return };
    let Some(room_ref) = hub.room(&room_id) else { return };
    let mut room = room_ref.lock().await;
    let Some(p) = room.participants.get_mut(&publisher) else { return };
    let Some(track) = p.tracks.iter_mut().find(|t| t.key == key) else { return };
    let layers: Vec<_> = layers.into_iter().map(|(rid, active)| sfu_proto::LayerState { rid, active }).collect();
    track.encoding = Some(layers.clone());
    let message = sfu_proto::ServerMessage::PublisherLayers { track_id: track.info.id.clone(), layers };
    tracing::info!(%publisher, track = %track.info.id, ?message, "dynacast");
    p.send(message);
}
