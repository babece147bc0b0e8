//! A dropped socket, the departure timeout and resuming. The clock is tokio's paused test
//! clock: sleeps advance it at once, so the 10 s timeout costs no wall time.

use super::*;

/// The socket of `client` went away, as `session::run` reports it.
async fn drop_socket(hub: &TestHub, client: &Client, generation: u64) {
    hub.detach(client.room.clone(), client.id.clone(), generation);
    // Let the detach task run up to its timer.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn resume(hub: &TestHub, client: &mut Client) -> Option<u64> {
    client.new_socket();
    hub.resume(&room_id("r"), &client.id, client.tx.clone()).await.map(|(_, generation)| generation)
}

async fn present(client: &Client, who: &ParticipantId) -> bool {
    client.room.lock().await.participants.contains_key(who)
}

#[tokio::test(start_paused = true)]
async fn a_session_resumed_within_the_departure_timeout_keeps_its_tracks() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    publish(&hub, &bob, &["audio"]).await.unwrap();
    let tracks = tracks_of(&alice).await;
    drop_socket(&hub, &alice, 0).await;
    assert!(alice.room.lock().await.participants[&alice.id].outbox.is_none());

    tokio::time::sleep(DEPARTURE / 2).await;
    bob.messages();
    hub.media.clear_calls();
    assert_eq!(resume(&hub, &mut alice).await, Some(1));
    match &alice.messages()[..] {
        [ServerMessage::Resumed { participant, participants }, ServerMessage::Offer { tracks: offered, .. }] => {
            assert_eq!(participant.tracks.len(), 2, "her tracks are still published");
            assert_eq!(participants.iter().map(|p| &p.id).collect::<Vec<_>>(), [&bob.id]);
            assert_eq!(offered.len(), 1, "bob's track offered again");
        }
        other => panic!("alice got {other:?}"),
    }
    // Her subscriber connection never came up here, so the new offer restarts ICE; nothing is
    // torn down or added again.
    assert_eq!(hub.media.calls(), [Call::SubscriberOffer { conn: alice.subscriber_conn, ice_restart: true }]);
    assert!(bob.messages().is_empty(), "bob notices nothing");

    tokio::time::sleep(DEPARTURE * 2).await;
    assert!(present(&alice, &alice.id).await, "the old timer spares the resumed session");
    assert_eq!(tracks_of(&alice).await, tracks);
    assert_eq!(hub.media.down_tracks(bob.subscriber_conn).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn resume_restarts_ice_only_if_the_media_path_broke() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    hub.set_connected(bob.subscriber_conn, true);
    drop_socket(&hub, &bob, 0).await;
    hub.media.clear_calls();
    assert_eq!(resume(&hub, &mut bob).await, Some(1));
    assert_eq!(hub.media.calls(), [Call::SubscriberOffer { conn: bob.subscriber_conn, ice_restart: false }]);
}

#[tokio::test(start_paused = true)]
async fn a_session_not_resumed_leaves_after_the_departure_timeout() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    let key = tracks_of(&alice).await[0].1;
    drop_socket(&hub, &alice, 0).await;
    bob.messages();

    tokio::time::sleep(DEPARTURE - Duration::from_millis(100)).await;
    assert!(present(&bob, &alice.id).await, "kept until the timeout");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!present(&bob, &alice.id).await);
    assert!(hub.media.down_tracks(bob.subscriber_conn).is_empty());
    assert!(hub.media.calls().contains(&Call::RemoveDownTrack { conn: bob.subscriber_conn, key }));
    assert!(
        bob.messages().iter().any(|m| matches!(m, ServerMessage::ParticipantLeft { reason: LeaveReason::Timeout, .. }))
    );

    let mut late = alice;
    assert_eq!(resume(&hub, &mut late).await, None, "too late to resume");
}

#[tokio::test(start_paused = true)]
async fn the_last_participant_timing_out_closes_the_room() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    drop_socket(&hub, &alice, 0).await;
    tokio::time::sleep(DEPARTURE * 2).await;
    assert_eq!(hub.room_count(), 0);
    assert_eq!(resume(&hub, &mut alice).await, None);
}

/// Resumed, then dropped again: the first timer is stale and must not cut the second wait short.
#[tokio::test(start_paused = true)]
async fn each_drop_gets_a_full_departure_timeout() {
    let hub = hub();
    let _bob = connect(&hub, "r", "bob").await;
    let mut alice = connect(&hub, "r", "alice").await;
    drop_socket(&hub, &alice, 0).await;
    tokio::time::sleep(DEPARTURE * 6 / 10).await;
    let generation = resume(&hub, &mut alice).await.unwrap();
    drop_socket(&hub, &alice, generation).await;
    tokio::time::sleep(DEPARTURE * 6 / 10).await;
    assert!(present(&alice, &alice.id).await, "the first timer has fired and done nothing");
    tokio::time::sleep(DEPARTURE / 2).await;
    assert!(!present(&alice, &alice.id).await, "the second timer removes her");
}

/// A second socket resuming the same session takes over; the first is told to go.
#[tokio::test(start_paused = true)]
async fn resuming_twice_closes_the_older_socket() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    assert_eq!(resume(&hub, &mut alice).await, Some(1));
    let mut older = std::mem::replace(&mut alice.rx, outbox().1);
    assert_eq!(resume(&hub, &mut alice).await, Some(2));
    let mut closes = Vec::new();
    while let Some(item) = older.try_recv() {
        if let Frame::Close(code, reason) = item {
            closes.push((code.code(), reason));
        }
    }
    assert_eq!(closes, [(4409, "resumed elsewhere".to_owned())]);
}

/// Away, then back through a fresh join (a reload after a network change): the new session
/// replaces the old, and the old session's timer leaves the new one alone.
#[tokio::test(start_paused = true)]
async fn a_rejoin_while_away_replaces_the_session_and_survives_its_timer() {
    let hub = hub();
    let _bob = connect(&hub, "r", "bob").await;
    let old = connect(&hub, "r", "alice").await;
    drop_socket(&hub, &old, 0).await;
    let new = connect(&hub, "r", "alice").await;
    assert!(!present(&new, &old.id).await);
    tokio::time::sleep(DEPARTURE * 2).await;
    assert!(present(&new, &new.id).await);
}
