//! The server-offers side of a subscriber connection: one offer in flight at a time; changes
//! made meanwhile are folded into the next offer.

use sfu_proto::{IceCandidate, MidTrack, ParticipantId, PeerRole, ServerMessage};

use super::request_error::RequestError;
use super::{Hub, MediaControl, Room};
use sfu_proto::ErrorCode;

impl<M: MediaControl> Hub<M> {
    /// Sends the subscriber connection a fresh offer if its tracks changed, or remembers to.
    pub async fn negotiate(&self, room: &mut Room, id: &ParticipantId) {
        let Some(p) = room.participants.get_mut(id) else { return };
        if !p.has_subscriber_conn {
            return;
        }
        // Before its `joined` (a remote track may arrive while it waits for it) the offer would
        // be dropped: it goes out with the welcome instead.
        if p.outbox.is_none() || !p.welcomed || p.negotiation.awaiting_answer {
            p.negotiation.needs_offer = true;
            return;
        }
        let restart = std::mem::take(&mut p.negotiation.ice_restart);
        let conn = p.subscriber_conn;
        let offer = match self.media.subscriber_offer(conn, restart).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(room = %room.id.escaped(), participant = %id, error = %e, "subscriber offer failed");
                return;
            }
        };
        let tracks = offer
            .tracks
            .iter()
            .filter_map(|(mid, key)| {
                // The room's mix is published by nobody: the empty participant id.
                if let Some(mix) = room.mix.as_ref().filter(|m| m.key == *key) {
                    return Some(MidTrack {
                        mid: mid.clone(),
                        track_id: mix.track_id.clone(),
                        participant_id: ParticipantId(String::new()),
                    });
                }
                room.any_track_by_key(*key).map(|(publisher, info)| MidTrack {
                    mid: mid.clone(),
                    track_id: info.id.clone(),
                    participant_id: publisher,
                })
            })
            .collect();
        let Some(p) = room.participants.get_mut(id) else { return };
        p.negotiation.awaiting_answer = true;
        p.negotiation.needs_offer = false;
        let candidate = local_candidate(&offer.sdp);
        p.send(ServerMessage::Offer { sdp: offer.sdp, tracks });
        if let Some(candidate) = candidate {
            p.send(ServerMessage::Candidate { target: PeerRole::Subscriber, candidate });
        }
    }

    /// The subscriber's answer to our last offer.
    pub async fn subscriber_answer(
        &self,
        room: &mut Room,
        id: &ParticipantId,
        sdp: String,
    ) -> Result<(), RequestError> {
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

/// The server's candidate from one of its own SDPs, to trickle as well: it is already in the
/// SDP (the server is ICE-lite with one host candidate per shard), but clients that trickle
/// expect to be told.
pub(super) fn local_candidate(sdp: &str) -> Option<IceCandidate> {
    let mid = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=mid:"))?;
    let candidate =
        sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=").filter(|c| c.starts_with("candidate:")))?;
    Some(IceCandidate {
        candidate: candidate.to_owned(),
        sdp_mid: Some(mid.to_owned()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_is_taken_from_the_first_media_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n";
        let c = local_candidate(sdp).unwrap();
        assert_eq!(c.candidate, "candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host");
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert!(local_candidate("v=0\r\n").is_none());
    }
}
