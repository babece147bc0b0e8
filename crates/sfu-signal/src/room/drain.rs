//! Shutting down gracefully (SIGTERM): a draining node takes nobody new, serves whom it has, and
//! at the end closes every session itself, so each client hears why (1001 `going_away`) rather
//! than seeing its socket and media vanish.

use sfu_proto::{CloseCode, ErrorCode, LeaveReason, ServerMessage};
use std::sync::atomic::Ordering;

use super::{Hub, MediaControl, Outgoing, RequestError};
use sfu_cluster::Cluster;

impl<M: MediaControl> Hub<M> {
    /// From now on every join, WHIP and WHEP session is refused with `draining`.
    pub fn begin_drain(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            // Other nodes stop sending clients here at once (the state is written at once).
            self.cluster.set_state(sfu_cluster::NodeState::Draining);
            metrics::gauge!("sfu_draining").set(1.0);
            tracing::info!(members = self.member_count(), "draining: no new sessions");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Refuses a newcomer while draining.
    pub(super) fn check_not_draining(&self) -> Result<(), RequestError> {
        if self.is_draining() {
            metrics::counter!("sfu_drain_refusals_total").increment(1);
            return Err(RequestError::new(ErrorCode::Draining, "the server is shutting down"));
        }
        Ok(())
    }

    /// Ends every session: participants leave with reason `shutdown` (a signaling socket is
    /// closed with 1001, or, given `redirect_to`, told to join there and closed with 4307),
    /// viewers' and WHIP publishers' connections close. Returns how many.
    pub async fn close_everyone(&self, redirect_to: Option<&str>) -> usize {
        let rooms: Vec<_> = self.rooms.lock().values().cloned().collect();
        let mut closed = 0;
        for room_ref in rooms {
            let mut room = room_ref.lock().await;
            let participants: Vec<_> = room.participants.keys().cloned().collect();
            for id in participants {
                if let (Some(url), Some(outbox)) =
                    (redirect_to, room.participants.get(&id).and_then(|p| p.outbox.as_ref()))
                {
                    // The first close queued is the one sent.
                    let _ = outbox.send(Outgoing::Message(ServerMessage::Redirect { url: url.to_owned() }));
                    let _ = outbox.send(Outgoing::Close(CloseCode::Redirected, "the server is shutting down".into()));
                }
                self.remove_participant(&mut room, &id, LeaveReason::Shutdown).await;
                closed += 1;
            }
            let viewers: Vec<_> = room.viewers.keys().cloned().collect();
            for session in viewers {
                closed += usize::from(self.remove_viewer(&mut room, &session));
            }
        }
        closed
    }
}
