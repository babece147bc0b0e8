//! Draining (SIGTERM): nobody new comes in, not even a participant replacing itself or a viewer,
//! and at the end every session is closed with `going_away`, leaving no room behind.

use super::viewers::add_viewer;
use super::*;
use sfu_proto::{CloseCode, ErrorCode};

#[tokio::test]
async fn a_draining_hub_refuses_everyone_new_then_closes_everyone_it_has() {
    let hub = hub();
    let mut alice = connect(&hub, "r1", "alice").await;
    let mut bob = connect(&hub, "r2", "bob").await;
    let viewer = add_viewer(&hub, &alice.room, "WV1", "alice").await;
    assert_eq!(hub.member_count(), 3);

    hub.begin_drain();
    assert!(hub.is_draining());
    for (room, identity) in [("r1", "carol"), ("r3", "dave"), ("r2", "bob")] {
        let (tx, _rx) = outbox();
        let room = room_id(room);
        let joined =
            hub.join(&room, Identity(identity.into()), Grants::participant(), ParticipantKind::Signaling, Some(tx));
        assert_eq!(joined.await.err().map(|e| e.code), Some(ErrorCode::Draining), "{identity} in {room}");
    }
    let refused = hub.take_place(&*alice.room.lock().await, false).map_err(|e| e.code);
    assert_eq!(refused, Err(ErrorCode::Draining), "a WHEP viewer");
    assert_eq!((hub.member_count(), hub.room_count()), (3, 2), "refusals change nothing");
    assert!(bob.messages().iter().all(|m| !matches!(m, ServerMessage::ParticipantLeft { .. })), "bob was not replaced");

    assert_eq!(hub.close_everyone(None).await, 3);
    for client in [&mut alice, &mut bob] {
        let closes: Vec<_> = client.received().into_iter().filter(|o| matches!(o, Outgoing::Close(..))).collect();
        assert!(matches!(closes.as_slice(), [Outgoing::Close(CloseCode::GoingAway, _)]), "{closes:?}");
    }
    let calls = hub.media.calls();
    for conn in [alice.publisher_conn, alice.subscriber_conn, bob.publisher_conn, viewer] {
        assert!(calls.contains(&Call::Close { conn }), "{conn:?} left open");
    }
    assert_eq!((hub.member_count(), hub.room_count()), (0, 0));
}

#[tokio::test]
async fn at_the_end_of_a_drain_in_a_cluster_sessions_are_sent_to_another_node() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    alice.messages();
    hub.begin_drain();
    assert_eq!(hub.close_everyone(Some("ws://10.0.0.2:7880/rtc")).await, 1);
    let received = alice.received();
    let first_close = received.iter().position(|o| matches!(o, Outgoing::Close(..)));
    match (&received[..], first_close) {
        (
            [Outgoing::Message(ServerMessage::Redirect { url }), Outgoing::Close(CloseCode::Redirected, _), ..],
            Some(1),
        ) => {
            assert_eq!(url, "ws://10.0.0.2:7880/rtc")
        }
        other => panic!("{other:?}"),
    }
}
