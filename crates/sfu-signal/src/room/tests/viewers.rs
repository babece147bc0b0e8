//! WHEP viewers: removed when their connection goes down, and never left holding a room open.

use super::*;
use crate::room::{MediaControl, Viewer};

pub(super) async fn add_viewer(hub: &TestHub, room: &RoomRef, session: &str, identity: &str) -> ConnId {
    let conn = hub.media.allocate_conn();
    let viewer = Viewer { conn, identity: Identity(identity.into()), trickled: 0 };
    let mut room = room.lock().await;
    hub.take_place(&room, false).expect("a place for the viewer");
    hub.add_viewer(&mut room, session.into(), viewer);
    conn
}

#[tokio::test]
async fn a_viewer_whose_connection_goes_down_is_removed_and_closes_the_room_it_was_last_in() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let never_connects = add_viewer(&hub, &alice.room, "WV1", "alice").await;
    let plays = add_viewer(&hub, &alice.room, "WV2", "alice").await;
    assert_eq!(hub.viewer_of(never_connects), Some((room_id("r"), "WV1".into())));

    // The publisher leaves: the viewers keep the room open.
    leave(&hub, &alice, LeaveReason::Left).await;
    assert_eq!(hub.room_count(), 1, "viewers keep their room");

    // One viewer's connection never came up: the media plane reports it down.
    hub.on_viewer_disconnected(never_connects).await;
    assert_eq!(hub.viewer_of(never_connects), None);
    assert!(hub.media.calls().contains(&Call::Close { conn: never_connects }));
    assert_eq!(alice.room.lock().await.viewers.len(), 1);
    assert_eq!(hub.room_count(), 1);

    // A participant's connection going down is not a viewer's business.
    hub.on_viewer_disconnected(alice.publisher_conn).await;
    assert_eq!(alice.room.lock().await.viewers.len(), 1);

    // The last viewer goes: the room closes.
    hub.on_viewer_disconnected(plays).await;
    assert_eq!(hub.room_count(), 0);
    assert!(hub.room(&room_id("r")).is_none());
}

#[tokio::test]
async fn deleting_the_last_viewer_closes_its_room_and_a_second_delete_finds_nothing() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let conn = add_viewer(&hub, &alice.room, "WV1", "alice").await;
    leave(&hub, &alice, LeaveReason::Left).await;
    assert!(hub.remove_viewer(&mut *alice.room.lock().await, "WV1"));
    assert!(hub.media.calls().contains(&Call::Close { conn }));
    assert_eq!(hub.room_count(), 0);
    assert!(!hub.remove_viewer(&mut *alice.room.lock().await, "WV1"));
}
