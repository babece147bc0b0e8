//! Reacts to what the media plane reports: relays data-channel messages to the room.

use base64::Engine;
use sfu_transport::MediaEvent;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::room::Hub;

pub async fn run(hub: Arc<Hub>, mut events: mpsc::UnboundedReceiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::Data { conn, text, payload } => relay_data(&hub, conn, text, &payload).await,
            MediaEvent::Connected { conn } => tracing::debug!(conn = conn.0, "media connected"),
            MediaEvent::Disconnected { conn } => tracing::debug!(conn = conn.0, "media disconnected"),
        }
    }
}

/// Delivers a participant's data message to every other participant's data channel, as JSON
/// naming the sender.
async fn relay_data(hub: &Hub, conn: sfu_transport::ConnId, text: bool, payload: &[u8]) {
    let Some((room_id, sender)) = hub.owner_of(conn) else { return };
    let Some(room_ref) = hub.room(&room_id) else { return };
    let room = room_ref.lock().await;
    let Some(from) = room.participants.get(&sender) else { return };
    if !from.grants.publish_data {
        metrics::counter!("sfu_data_messages_rejected_total").increment(1);
        return;
    }
    let mut envelope = serde_json::json!({ "from": from.identity, "participant_id": from.id });
    if text {
        envelope["data"] = String::from_utf8_lossy(payload).into_owned().into();
    } else {
        envelope["data_b64"] = base64::engine::general_purpose::STANDARD.encode(payload).into();
    }
    let bytes = bytes::Bytes::from(envelope.to_string());
    for p in room.participants.values().filter(|p| p.id != sender) {
        hub.media.send_data(p.publisher_conn, true, bytes.clone());
    }
    metrics::counter!("sfu_data_messages_total").increment(1);
}
