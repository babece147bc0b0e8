//! The server-offers side of a subscriber connection: one offer in flight at a time; changes
//! made meanwhile are folded into the next offer.

use sfu_proto::{MidTrack, ParticipantId, ServerMessage};

use super::publish::RequestError;
use super::{Hub, Room};
use sfu_proto::ErrorCode;

impl Hub {
    /// Sends the subscriber connection a fresh offer if its tracks changed, or remembers to.
    pub async fn negotiate(&self, room: &mut Room, id: &ParticipantId) {
        let Some(p) = room.participants.get_mut(id) else { return };
        if !p.has_subscriber_conn {
            return;
        }
        if p.outbox.is_none() || p.negotiation.awaiting_answer {
            p.negotiation.needs_offer = true;
            return;
        }
        let restart = std::mem::take(&mut p.negotiation.ice_restart);
        let conn = p.subscriber_conn;
        let offer = match self.media.subscriber_offer(conn, restart).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(room = %room.id, participant = %id, error = %e, "subscriber offer failed");
                return;
            }
        };
        let tracks = offer
            .tracks
            .iter()
            .filter_map(|(mid, key)| {
                room.track_by_key(*key).map(|(publisher, t)| MidTrack {
                    mid: mid.clone(),
                    track_id: t.info.id.clone(),
                    participant_id: publisher.id.clone(),
                })
            })
            .collect();
        let Some(p) = room.participants.get_mut(id) else { return };
        p.negotiation.awaiting_answer = true;
        p.negotiation.needs_offer = false;
        p.send(ServerMessage::Offer { sdp: offer.sdp, tracks });
    }

    /// The subscriber's answer to our last offer.
    pub async fn subscriber_answer(&self, room: &mut Room, id: &ParticipantId, sdp: String) -> Result<(), RequestError> {
        let p = room.participants.get_mut(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        if !p.negotiation.awaiting_answer {
            return Err(RequestError::new(ErrorCode::BadState, "no subscriber offer is awaiting an answer"));
        }
        let conn = p.subscriber_conn;
        let result = self.media.subscriber_answer(conn, sdp).await;
        let p = room.participants.get_mut(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        p.negotiation.awaiting_answer = false;
        result?;
        if p.negotiation.needs_offer {
            self.negotiate(room, id).await;
        }
        Ok(())
    }
}
