//! Candidates a client trickles over signaling, counted per connection. The server is ICE-lite:
//! it learns a client's address from its connectivity checks, so candidates past the limit can be
//! refused without harm to the media path.

use sfu_proto::{ErrorCode, IceCandidate, ParticipantId, PeerRole};

use super::{Hub, MediaControl, RequestError, Room};

impl<M: MediaControl> Hub<M> {
    /// Hands a trickled candidate to the media plane, unless the connection was sent
    /// `limits.candidates_per_connection` already (`too_many_candidates`).
    pub async fn remote_candidate(
        &self,
        room: &mut Room,
        id: &ParticipantId,
        target: PeerRole,
        candidate: IceCandidate,
    ) -> Result<(), RequestError> {
        let p = room.participants.get_mut(id).ok_or_else(|| RequestError::new(ErrorCode::BadState, "not joined"))?;
        let (conn, trickled) = match target {
            PeerRole::Publisher => (p.publisher_conn, &mut p.trickled.publisher),
            PeerRole::Subscriber => (p.subscriber_conn, &mut p.trickled.subscriber),
        };
        self.count_candidates(trickled, 1)?;
        // A candidate for a connection that does not exist yet (or any more) is harmless.
        let _ = self.media.add_remote_candidate(conn, candidate).await;
        Ok(())
    }
}
