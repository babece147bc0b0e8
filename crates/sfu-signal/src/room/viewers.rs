//! WHEP viewers: sessions that play one publisher's tracks and have no signaling socket. Like a
//! WHIP publisher, a viewer whose connection fails, closes or never comes up (its consent lapses
//! first) is removed, so it can neither pile up nor keep its room open.

use sfu_proto::RoomId;
use sfu_transport::ConnId;

use super::{Hub, MediaControl, Room, Viewer};

impl<M: MediaControl> Hub<M> {
    /// Adds a viewer whose place was taken with [`Hub::take_place`].
    pub fn add_viewer(&self, room: &mut Room, session: String, viewer: Viewer) {
        self.viewer_conns.lock().insert(viewer.conn, (room.id.clone(), session.clone()));
        room.viewers.insert(session, viewer);
        self.review_topology(room);
    }

    /// Ends a viewer session: its connection closes, and its room if it was the last one there.
    /// False when there is no such session.
    pub fn remove_viewer(&self, room: &mut Room, session: &str) -> bool {
        let Some(viewer) = room.viewers.remove(session) else { return false };
        self.give_back_place();
        self.viewer_conns.lock().remove(&viewer.conn);
        self.media.close(viewer.conn);
        tracing::info!(room = %room.id.escaped(), viewer = session, "whep session ended");
        self.review_topology(room);
        self.close_if_empty(room);
        true
    }

    /// The room and session of a viewer's connection.
    pub fn viewer_of(&self, conn: ConnId) -> Option<(RoomId, String)> {
        self.viewer_conns.lock().get(&conn).cloned()
    }

    /// The media plane reports `conn` down for good: a viewer's session ends with it.
    pub async fn on_viewer_disconnected(&self, conn: ConnId) {
        let Some((room_id, session)) = self.viewer_of(conn) else { return };
        let Some(room_ref) = self.room(&room_id) else { return };
        let mut room = room_ref.lock().await;
        self.remove_viewer(&mut room, &session);
    }
}
