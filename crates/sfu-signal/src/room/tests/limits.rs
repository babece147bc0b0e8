//! `[limits]`: full rooms and nodes refuse joins, offers with too many tracks or sections never
//! reach the media plane, and a connection takes only so many trickled candidates.

use super::*;
use sfu_proto::{ErrorCode, IceCandidate, PeerRole};

async fn try_join(hub: &TestHub, room: &str, identity: &str) -> Result<ParticipantId, ErrorCode> {
    let (tx, _rx) = outbox();
    let (room, identity) = (room_id(room), Identity(identity.into()));
    let joined = hub.join(&room, identity, Grants::participant(), ParticipantKind::Signaling, Some(tx)).await;
    joined.map(|(_, id)| id).map_err(|e| e.code)
}

async fn participants_in(hub: &TestHub, room: &str) -> usize {
    match hub.room(&room_id(room)) {
        Some(room) => room.lock().await.participants.len(),
        None => 0,
    }
}

#[tokio::test]
async fn a_full_room_refuses_newcomers_but_not_a_participant_replacing_itself() {
    let hub = hub_with(Limits { participants_per_room: 2, ..Limits::default() });
    let alice = connect(&hub, "r", "alice").await;
    let _bob = connect(&hub, "r", "bob").await;
    hub.media.clear_calls();

    assert_eq!(try_join(&hub, "r", "carol").await, Err(ErrorCode::RoomFull));
    assert!(hub.media.calls().is_empty(), "a refused join asks nothing of the media plane");
    assert_eq!(participants_in(&hub, "r").await, 2);

    // Bob joins again from elsewhere: he takes his own place.
    try_join(&hub, "r", "bob").await.unwrap();
    assert_eq!((participants_in(&hub, "r").await, hub.member_count()), (2, 2));

    // Once someone leaves there is room again.
    leave(&hub, &alice, LeaveReason::Left).await;
    try_join(&hub, "r", "carol").await.unwrap();
    assert_eq!(hub.member_count(), 2);
}

#[tokio::test]
async fn the_node_counts_participants_over_all_rooms() {
    let hub = hub_with(Limits { participants_per_node: 2, ..Limits::default() });
    let _alice = connect(&hub, "r1", "alice").await;
    let bob = connect(&hub, "r2", "bob").await;

    assert_eq!(try_join(&hub, "r3", "carol").await, Err(ErrorCode::NodeFull));
    assert_eq!(try_join(&hub, "r1", "carol").await, Err(ErrorCode::NodeFull));
    assert!(hub.room(&room_id("r3")).is_none(), "the room made for a refused join closes again");
    assert_eq!(hub.room_count(), 2);

    leave(&hub, &bob, LeaveReason::Left).await;
    assert_eq!(hub.member_count(), 1);
    try_join(&hub, "r3", "carol").await.unwrap();
    assert_eq!(hub.member_count(), 2);
}

#[tokio::test]
async fn the_node_refuses_a_new_room_past_its_limit_but_joins_to_open_rooms_go_on() {
    let hub = hub_with(Limits { rooms_per_node: 1, ..Limits::default() });
    let alice = connect(&hub, "r1", "alice").await;

    assert_eq!(try_join(&hub, "r2", "bob").await, Err(ErrorCode::NodeFull));
    assert_eq!(hub.room_count(), 1);
    let bob = connect(&hub, "r1", "bob").await;

    // A room closes when its last participant leaves, which frees its slot.
    leave(&hub, &alice, LeaveReason::Left).await;
    leave(&hub, &bob, LeaveReason::Left).await;
    assert_eq!(hub.room_count(), 0);
    try_join(&hub, "r2", "bob").await.unwrap();
}

#[tokio::test]
async fn whep_viewers_take_places_in_the_room_and_on_the_node() {
    let hub = hub_with(Limits { participants_per_room: 2, participants_per_node: 3, ..Limits::default() });
    let alice = connect(&hub, "r", "alice").await;
    {
        let mut room = alice.room.lock().await;
        hub.take_place(&room, false).unwrap();
        let viewer = crate::room::Viewer { conn: ConnId(77), identity: Identity("alice".into()), trickled: 0 };
        hub.add_viewer(&mut room, "WV1".into(), viewer);
        assert_eq!(hub.take_place(&room, false).unwrap_err().code, ErrorCode::RoomFull);
    }
    assert_eq!(try_join(&hub, "r", "bob").await, Err(ErrorCode::RoomFull));
    assert_eq!(hub.member_count(), 2);

    assert!(hub.remove_viewer(&mut *alice.room.lock().await, "WV1"));
    assert_eq!(hub.member_count(), 1);
    try_join(&hub, "r", "bob").await.unwrap();
}

#[tokio::test]
async fn an_offer_publishing_too_many_tracks_never_reaches_the_media_plane() {
    let hub = hub_with(Limits { tracks_per_participant: 2, ..Limits::default() });
    let mut alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    alice.messages();
    bob.messages();
    hub.media.clear_calls();

    let err = publish(&hub, &alice, &["audio", "video", "video"]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyTracks);
    assert!(hub.media.calls().is_empty(), "refused before the media plane: {:?}", hub.media.calls());
    assert!(tracks_of(&alice).await.is_empty());
    assert!(alice.messages().is_empty() && bob.messages().is_empty(), "nobody hears of a refused offer");

    // A stopped section is no track; two live ones are within the limit.
    publish(&hub, &alice, &["audio", "video", "-"]).await.unwrap();
    let published = tracks_of(&alice).await;
    assert_eq!(published.len(), 2);

    // Adding a third is refused, and the two stay published.
    let err = publish(&hub, &alice, &["audio", "video", "video"]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyTracks);
    assert_eq!(tracks_of(&alice).await, published);
}

#[tokio::test]
async fn an_offer_with_too_many_sections_is_refused_whatever_they_carry() {
    let hub = hub_with(Limits { tracks_per_participant: 2, media_sections_per_offer: 3, ..Limits::default() });
    let alice = connect(&hub, "r", "alice").await;
    hub.media.clear_calls();

    let err = publish(&hub, &alice, &["audio", "-", "-", "-"]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManySections);
    assert!(hub.media.calls().is_empty());
    assert!(hub.check_sections(&offer(&["-", "-", "-"])).is_ok());
    publish(&hub, &alice, &["audio", "-", "-"]).await.unwrap();
}

#[tokio::test]
async fn each_connection_takes_a_limited_number_of_trickled_candidates() {
    let hub = hub_with(Limits { candidates_per_connection: 2, ..Limits::default() });
    let alice = connect(&hub, "r", "alice").await;
    let candidate = || IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    let trickle = |target| {
        let (hub, alice) = (hub.clone(), &alice);
        async move {
            let mut room = alice.room.lock().await;
            hub.remote_candidate(&mut room, &alice.id, target, candidate()).await.map_err(|e| e.code)
        }
    };
    hub.media.clear_calls();
    for _ in 0..2 {
        trickle(PeerRole::Publisher).await.unwrap();
    }
    assert_eq!(trickle(PeerRole::Publisher).await, Err(ErrorCode::TooManyCandidates));
    // The subscriber connection has a count of its own.
    trickle(PeerRole::Subscriber).await.unwrap();

    let on = |conn| hub.media.calls().iter().filter(|c| **c == Call::Candidate { conn }).count();
    assert_eq!((on(alice.publisher_conn), on(alice.subscriber_conn)), (2, 1), "the refused one was dropped");

    // A batch that would cross the limit is refused whole (a WHIP/WHEP PATCH).
    let mut trickled = 1;
    assert_eq!(hub.count_candidates(&mut trickled, 2).unwrap_err().code, ErrorCode::TooManyCandidates);
    assert_eq!(trickled, 1);
    hub.count_candidates(&mut trickled, 1).unwrap();
    assert_eq!(trickled, 2);
}
