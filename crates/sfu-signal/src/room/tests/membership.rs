//! Joining, leaving and replacing a session with the same identity.

use super::*;

#[tokio::test]
async fn first_join_creates_the_room_and_the_last_leave_removes_it() {
    let hub = hub();
    assert_eq!(hub.room_count(), 0);
    let alice = connect(&hub, "r", "alice").await;
    assert_eq!(hub.room_count(), 1);
    let bob = connect(&hub, "r", "bob").await;
    assert!(Arc::ptr_eq(&alice.room, &bob.room), "both in one room");
    assert!(registered_with(&hub, "r", &alice.room, &[&alice.id, &bob.id]).await);
    assert_eq!(hub.owner_of(alice.publisher_conn), Some((room_id("r"), alice.id.clone())));

    leave(&hub, &alice, LeaveReason::Left).await;
    assert!(registered_with(&hub, "r", &bob.room, &[&bob.id]).await, "the room outlives one leave");
    leave(&hub, &bob, LeaveReason::Left).await;
    assert_eq!(hub.room_count(), 0);
    assert!(hub.room(&room_id("r")).is_none());

    let closed: Vec<Call> = hub.media.calls().into_iter().filter(|c| matches!(c, Call::Close { .. })).collect();
    let expected: Vec<Call> = [alice.publisher_conn, alice.subscriber_conn, bob.publisher_conn, bob.subscriber_conn]
        .into_iter()
        .map(|conn| Call::Close { conn })
        .collect();
    assert_eq!(closed, expected, "each connection closed once");
    assert_eq!(hub.owner_of(alice.publisher_conn), None);
    assert_eq!(hub.owner_of(bob.subscriber_conn), None);
}

#[tokio::test]
async fn rooms_with_different_names_are_separate() {
    let hub = hub();
    let alice = connect(&hub, "r1", "alice").await;
    let bob = connect(&hub, "r2", "bob").await;
    assert_eq!(hub.room_count(), 2);
    assert!(!Arc::ptr_eq(&alice.room, &bob.room));
    assert!(!bob.room.lock().await.participants.contains_key(&alice.id));
}

#[tokio::test]
async fn a_newcomer_learns_who_is_there_and_the_others_hear_of_it() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    let joined = alice.messages();
    assert!(
        matches!(&joined[..], [ServerMessage::Joined { participants, departure_timeout_ms: 10_000, .. }] if participants.is_empty())
    );
    let mut bob = connect(&hub, "r", "bob").await;
    match &bob.messages()[..] {
        [ServerMessage::Joined { participant, participants, .. }] => {
            assert_eq!(participant.id, bob.id);
            assert_eq!(participants.iter().map(|p| &p.id).collect::<Vec<_>>(), [&alice.id]);
        }
        other => panic!("bob got {other:?}"),
    }
    match &alice.messages()[..] {
        [ServerMessage::ParticipantJoined { participant }] => assert_eq!(participant.id, bob.id),
        other => panic!("alice got {other:?}"),
    }

    leave(&hub, &bob, LeaveReason::Left).await;
    match &alice.messages()[..] {
        [ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Left, .. }] => {
            assert_eq!(participant_id, &bob.id)
        }
        other => panic!("alice got {other:?}"),
    }
}

#[tokio::test]
async fn the_same_identity_joining_again_replaces_the_first_session() {
    let hub = hub();
    let mut bob = connect(&hub, "r", "bob").await;
    let mut first = connect(&hub, "r", "alice").await;
    bob.messages();
    let second = connect(&hub, "r", "alice").await;

    let closes: Vec<(u16, String)> = first
        .received()
        .into_iter()
        .filter_map(|o| match o {
            Outgoing::Close(code, reason) => Some((code.code(), reason)),
            Outgoing::Message(_) => None,
        })
        .collect();
    assert_eq!(closes, [(4409, "replaced by a newer session".to_owned())]);
    assert!(registered_with(&hub, "r", &second.room, &[&bob.id, &second.id]).await);
    let calls = hub.media.calls();
    assert!(calls.contains(&Call::Close { conn: first.publisher_conn }));
    assert!(calls.contains(&Call::Close { conn: first.subscriber_conn }));
    assert_eq!(hub.owner_of(first.publisher_conn), None);

    // Bob sees the old session leave (as replaced) before the new one arrives.
    match &bob.messages()[..] {
        [
            ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Replaced, .. },
            ServerMessage::ParticipantJoined { participant },
        ] => {
            assert_eq!(participant_id, &first.id);
            assert_eq!(participant.id, second.id);
        }
        other => panic!("bob got {other:?}"),
    }
}

/// A session replaced between its join and its welcome is told so (the socket then closes
/// with "session not found") instead of being welcomed into a room it is no longer in.
#[tokio::test]
async fn a_session_replaced_before_its_welcome_is_not_welcomed() {
    let hub = hub();
    let _bob = connect(&hub, "r", "bob").await;
    let mut first = join_only(&hub, "r", "alice", ParticipantKind::Signaling).await;
    let second = connect(&hub, "r", "alice").await;
    assert!(!hub.welcome(&first.room, &first.id, "stale".into(), &first.tx).await);
    assert!(!first.messages().iter().any(|m| matches!(m, ServerMessage::Joined { .. })));
    assert!(second.room.lock().await.participants.contains_key(&second.id));
}

/// Reloading the page when alone in a room: the new session must stay in the registered room,
/// where the next participant finds it.
#[tokio::test]
async fn a_reload_when_alone_keeps_the_room() {
    let hub = hub();
    let mut first = connect(&hub, "r", "alice").await;
    let second = connect(&hub, "r", "alice").await;
    assert!(first.received().iter().any(|o| matches!(o, Outgoing::Close(sfu_proto::CloseCode::Replaced, _))));
    let bob = connect(&hub, "r", "bob").await;
    assert!(Arc::ptr_eq(&second.room, &bob.room), "bob joins the room alice is in");
    assert!(registered_with(&hub, "r", &bob.room, &[&second.id, &bob.id]).await);
    assert_eq!(hub.room_count(), 1);
}

#[tokio::test]
async fn a_room_keeps_its_sid_while_it_lives_and_gets_a_new_one_when_made_again() {
    let hub = hub();
    let sid_of = |messages: Vec<ServerMessage>| match &messages[..] {
        [ServerMessage::Joined { room_sid, .. }, ..] => room_sid.clone(),
        other => panic!("expected joined, got {other:?}"),
    };
    let mut alice = connect(&hub, "r", "alice").await;
    let first = sid_of(alice.messages());
    assert!(first.starts_with("RM_"), "{first}");
    let mut bob = connect(&hub, "r", "bob").await;
    assert_eq!(sid_of(bob.messages()), first, "one room, one sid");
    leave(&hub, &alice, LeaveReason::Left).await;
    leave(&hub, &bob, LeaveReason::Left).await;
    let mut carol = connect(&hub, "r", "carol").await;
    let second = sid_of(carol.messages());
    assert!(second.starts_with("RM_") && second != first, "{first} then {second}");
}

#[tokio::test]
async fn joined_carries_turn_credentials_minted_for_the_identity() {
    let hub = hub();
    let mut config = crate::config::Config::for_dev();
    config.turn.secret = "turn-rest-test-secret".into();
    config.turn.urls = vec!["turn:turn.example.org:3478?transport=udp".into()];
    let embedded = vec!["turn:127.0.0.1:3478?transport=udp".to_owned()];
    hub.set_ice_servers(crate::ice_servers::IceServers::new(&config, embedded));
    let mut alice = connect(&hub, "r", "alice smith").await;
    let messages = alice.messages();
    let [ServerMessage::Joined { ice_servers, .. }] = &messages[..] else { panic!("no joined: {messages:?}") };
    let urls: Vec<&str> = ice_servers.iter().map(|s| s.urls[0].as_str()).collect();
    assert_eq!(urls, ["turn:127.0.0.1:3478?transport=udp", "turn:turn.example.org:3478?transport=udp"]);
    let username = ice_servers[0].username.as_deref().unwrap();
    let (expiry, identity) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((now + 86_300..=now + 86_400).contains(&expiry), "valid for turn.ttl_secs");
    assert_eq!(identity, "alice_smith");
    let password = sfu_turn::credentials::RestSecret::new(b"turn-rest-test-secret").password_for(username);
    assert_eq!(ice_servers[0].credential.as_deref(), Some(password.as_str()));
    assert_eq!(ice_servers[1].credential, ice_servers[0].credential);
}
