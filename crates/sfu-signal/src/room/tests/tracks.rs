//! Publishing, subscribing, renegotiating and unpublishing.

use super::*;
use sfu_proto::ErrorCode;

/// Track ids of the `TrackPublished` / `TrackUnpublished` messages among `messages`.
fn published(messages: &[ServerMessage]) -> Vec<TrackId> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::TrackPublished { track, .. } => Some(track.id.clone()),
            _ => None,
        })
        .collect()
}

fn unpublished(messages: &[ServerMessage]) -> Vec<TrackId> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::TrackUnpublished { track_id, .. } => Some(track_id.clone()),
            _ => None,
        })
        .collect()
}

fn with_publisher(publisher: &Client, tracks: &[(TrackId, TrackKey)]) -> Vec<(ParticipantId, TrackId)> {
    tracks.iter().map(|(id, _)| (publisher.id.clone(), id.clone())).collect()
}

#[tokio::test]
async fn a_published_track_is_added_to_the_other_participant_and_offered() {
    let hub = hub();
    let mut alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    alice.messages();
    bob.messages();
    hub.media.clear_calls();

    let answer = publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    assert!(answer.starts_with("v=0"));
    let tracks = tracks_of(&alice).await;
    assert_eq!(tracks.len(), 2);
    let ids: Vec<TrackId> = tracks.iter().map(|(id, _)| id.clone()).collect();

    assert!(calls_on(&hub, alice.subscriber_conn).is_empty(), "alice is not subscribed to herself");
    assert_eq!(
        calls_on(&hub, bob.subscriber_conn),
        [
            Call::AddDownTrack { conn: bob.subscriber_conn, key: tracks[0].1 },
            Call::AddDownTrack { conn: bob.subscriber_conn, key: tracks[1].1 },
            Call::SubscriberOffer { conn: bob.subscriber_conn, ice_restart: false },
        ]
    );
    let to_alice = alice.messages();
    assert!(matches!(to_alice[0], ServerMessage::Answer { .. }));
    assert_eq!(published(&to_alice), ids, "the publisher learns its track ids");
    let to_bob = bob.messages();
    assert_eq!(published(&to_bob), ids);
    assert_eq!(offers(&to_bob), [with_publisher(&alice, &tracks)]);
    assert!(matches!(to_bob.last(), Some(ServerMessage::Offer { .. })), "announced before offered");

    // And the other way round.
    answer_ok(&hub, &bob).await;
    publish(&hub, &bob, &["audio"]).await.unwrap();
    let bob_tracks = tracks_of(&bob).await;
    assert_eq!(hub.media.down_tracks(alice.subscriber_conn), [bob_tracks[0].1]);
    assert_eq!(offers(&alice.messages()), [with_publisher(&bob, &bob_tracks)]);
}

async fn answer_ok(hub: &TestHub, client: &Client) {
    answer(hub, client).await.unwrap();
}

#[tokio::test]
async fn a_late_joiner_gets_what_is_already_published() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    let tracks = tracks_of(&alice).await;
    let mut carol = connect(&hub, "r", "carol").await;
    let to_carol = carol.messages();
    match &to_carol[0] {
        ServerMessage::Joined { participants, .. } => {
            let listed: Vec<TrackId> = participants[0].tracks.iter().map(|t| t.id.clone()).collect();
            assert_eq!(listed, tracks.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
        }
        other => panic!("carol first got {other:?}"),
    }
    assert_eq!(offers(&to_carol), [with_publisher(&alice, &tracks)]);
    assert_eq!(hub.media.down_tracks(carol.subscriber_conn), tracks.iter().map(|(_, k)| *k).collect::<Vec<_>>());
}

#[tokio::test]
async fn changes_while_an_offer_is_in_flight_wait_for_the_answer() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    assert_eq!(offers(&bob.messages()).len(), 1);

    // Alice adds video before Bob answered: Bob hears of it but gets no second offer yet.
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    let tracks = tracks_of(&alice).await;
    let to_bob = bob.messages();
    assert_eq!(published(&to_bob), [tracks[1].0.clone()]);
    assert!(offers(&to_bob).is_empty(), "one offer in flight at a time");
    assert_eq!(hub.media.down_tracks(bob.subscriber_conn).len(), 2, "added at once, offered later");

    answer_ok(&hub, &bob).await;
    assert_eq!(offers(&bob.messages()), [with_publisher(&alice, &tracks)]);
    answer_ok(&hub, &bob).await;
    assert!(bob.messages().is_empty(), "nothing more to offer");
    let err = answer(&hub, &bob).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadState, "an answer with no offer pending");
}

/// A section the publisher stops: its down track leaves every subscriber's connection before
/// the subscriber is told and offered the smaller set, and the room forgets the track.
#[tokio::test]
async fn a_stopped_track_is_removed_from_subscribers_before_they_are_told() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    answer_ok(&hub, &bob).await;
    let tracks = tracks_of(&alice).await;
    let (audio, video) = (tracks[0].clone(), tracks[1].clone());
    bob.messages();
    hub.media.clear_calls();

    publish(&hub, &alice, &["audio", "-"]).await.unwrap();
    assert_eq!(
        calls_on(&hub, bob.subscriber_conn),
        [
            Call::RemoveDownTrack { conn: bob.subscriber_conn, key: video.1 },
            Call::SubscriberOffer { conn: bob.subscriber_conn, ice_restart: false },
        ]
    );
    let to_bob = bob.messages();
    assert_eq!(unpublished(&to_bob), std::slice::from_ref(&video.0));
    assert_eq!(offers(&to_bob), [with_publisher(&alice, std::slice::from_ref(&audio))]);
    let position = |pred: fn(&ServerMessage) -> bool| to_bob.iter().position(pred);
    assert!(
        position(|m| matches!(m, ServerMessage::TrackUnpublished { .. }))
            < position(|m| matches!(m, ServerMessage::Offer { .. }))
    );
    let room = alice.room.lock().await;
    assert!(room.track(&video.0).is_none() && room.track_by_key(video.1).is_none(), "forgotten");
    assert!(!room.participants[&bob.id].subscribed.contains(&video.1));
    assert!(room.track(&audio.0).is_some());
}

#[tokio::test]
async fn a_leaving_publisher_is_unsubscribed_before_it_is_gone() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    answer_ok(&hub, &bob).await;
    let tracks = tracks_of(&alice).await;
    bob.messages();
    hub.media.clear_calls();

    leave(&hub, &alice, LeaveReason::Left).await;
    let removed: Vec<Call> =
        tracks.iter().map(|(_, key)| Call::RemoveDownTrack { conn: bob.subscriber_conn, key: *key }).collect();
    let mut expected = removed.clone();
    expected.push(Call::SubscriberOffer { conn: bob.subscriber_conn, ice_restart: false });
    assert_eq!(calls_on(&hub, bob.subscriber_conn), expected);
    assert!(hub.media.down_tracks(bob.subscriber_conn).is_empty());

    // Bob is told the tracks are gone before he is told their publisher left.
    let to_bob = bob.messages();
    let kinds: Vec<&str> = to_bob
        .iter()
        .map(|m| match m {
            ServerMessage::TrackUnpublished { .. } => "unpublished",
            ServerMessage::Offer { tracks, .. } if tracks.is_empty() => "empty offer",
            ServerMessage::ParticipantLeft { .. } => "left",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["unpublished", "unpublished", "empty offer", "left"]);
    assert_eq!(unpublished(&to_bob), tracks.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn muting_reaches_the_media_plane_and_the_others() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    let (track, key) = tracks_of(&alice).await.remove(0);
    bob.messages();
    {
        let mut room = alice.room.lock().await;
        hub.set_muted(&mut room, &alice.id, &track, true).unwrap();
        let err = hub.set_muted(&mut room, &bob.id, &track, true).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownTrack, "only the publisher mutes its track");
    }
    assert!(hub.media.calls().contains(&Call::SetMuted { key, muted: true }));
    assert!(
        matches!(&bob.messages()[..], [ServerMessage::TrackMuted { track_id, muted: true, .. }] if *track_id == track)
    );
}

#[tokio::test]
async fn media_needs_the_publish_grant_and_whip_publishers_subscribe_to_nothing() {
    let hub = hub();
    let (tx, _rx) = outbox();
    let listen_only = Grants { publish: false, ..Grants::participant() };
    let (room_ref, viewer) = hub
        .join(&room_id("r"), Identity("viewer".into()), listen_only, ParticipantKind::Signaling, Some(tx))
        .await
        .unwrap();
    hub.media.clear_calls();
    let err = {
        let mut room = room_ref.lock().await;
        hub.publisher_offer(&mut room, &viewer, offer(&["audio"]), Vec::new()).await.unwrap_err()
    };
    assert_eq!(err.code, ErrorCode::NotAllowed);
    assert!(hub.media.calls().is_empty(), "refused before the media plane is asked");

    let whip = join_only(&hub, "r", "encoder", ParticipantKind::Whip).await;
    let alice = connect(&hub, "r", "alice").await;
    publish(&hub, &alice, &["video"]).await.unwrap();
    assert!(calls_on(&hub, whip.subscriber_conn).is_empty());
    let key = tracks_of(&alice).await[0].1;
    let viewer_conn = room_ref.lock().await.participants[&viewer].subscriber_conn;
    assert_eq!(hub.media.down_tracks(viewer_conn), [key], "subscribing needs no publish grant");
}
