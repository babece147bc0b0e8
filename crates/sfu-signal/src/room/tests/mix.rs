//! MCU audio, room side: in a room that mixes, every subscriber gets the one mixed track and no
//! speaker's audio; every speaker's audio is an input of the mix while it is published.

use super::*;
use crate::config::AudioMode;

fn hub_mixing() -> TestHub {
    Hub::new(
        FakeMedia::default(),
        single_node(),
        DEPARTURE,
        Limits::default(),
        AudioConfig { mode: AudioMode::Mix, ..Default::default() },
        Default::default(),
    )
}

fn mix_calls(hub: &TestHub) -> Vec<Call> {
    hub.media
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                Call::AddMix { .. } | Call::RemoveMix { .. } | Call::AddMixInput { .. } | Call::RemoveMixInput { .. }
            )
        })
        .collect()
}

#[tokio::test]
async fn subscribers_get_the_mix_instead_of_the_speakers_and_every_speaker_is_mixed() {
    let hub = hub_mixing();
    let mut alice = connect(&hub, "r", "alice").await;
    let mut bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio", "video"]).await.unwrap();
    publish(&hub, &bob, &["audio"]).await.unwrap();
    let alice_tracks = tracks_of(&alice).await;
    let (alice_audio, alice_video) = (alice_tracks[0].1, alice_tracks[1].1);
    let bob_audio = tracks_of(&bob).await[0].1;

    let calls = mix_calls(&hub);
    let Some(Call::AddMix { key: mix }) = calls.first().cloned() else { panic!("no mix started: {calls:?}") };
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::AddMix { .. })).count(), 1, "one mix per room");
    assert!(calls.contains(&Call::AddMixInput { mix, input: alice_audio, speaker: alice.id.clone() }));
    assert!(calls.contains(&Call::AddMixInput { mix, input: bob_audio, speaker: bob.id.clone() }));

    // Bob receives the mix and alice's video, never alice's audio; alice only the mix.
    let bob_down = hub.media.down_tracks(bob.subscriber_conn);
    assert!(bob_down.contains(&mix) && bob_down.contains(&alice_video), "{bob_down:?}");
    assert!(!bob_down.contains(&alice_audio));
    assert_eq!(hub.media.down_tracks(alice.subscriber_conn), vec![mix]);

    // The offer names the mix as the room's own track: participant id ''.
    let bob_offers = offers(&bob.messages());
    let last = bob_offers.last().expect("bob got an offer");
    assert!(last.iter().any(|(who, _)| who.0.is_empty()), "no track of the room's in {last:?}");
    assert!(last.iter().all(|(who, _)| who.0.is_empty() || *who == alice.id), "{last:?}");
    let _ = alice.messages();

    // A speaker who leaves is no longer mixed; the last one out ends the mix.
    leave(&hub, &alice, LeaveReason::Left).await;
    assert!(mix_calls(&hub).contains(&Call::RemoveMixInput { mix, input: alice_audio }));
    assert!(!mix_calls(&hub).contains(&Call::RemoveMix { key: mix }));
    leave(&hub, &bob, LeaveReason::Left).await;
    assert!(mix_calls(&hub).contains(&Call::RemoveMix { key: mix }));
}

#[tokio::test]
async fn a_forwarding_room_never_mixes() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    let bob = connect(&hub, "r", "bob").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    assert_eq!(mix_calls(&hub), Vec::<Call>::new());
    assert_eq!(hub.media.down_tracks(bob.subscriber_conn), vec![tracks_of(&alice).await[0].1]);
}

#[tokio::test]
async fn the_room_creators_audio_claim_wins_over_the_config() {
    let hub = hub();
    let claims = RoomClaims { topology: None, audio_mode: Some(AudioMode::Mix) };
    let (tx, _rx) = outbox();
    let (room, _) = hub
        .join_with(
            &room_id("mixed"),
            Identity("a".into()),
            Grants::participant(),
            ParticipantKind::Signaling,
            Some(tx),
            claims,
        )
        .await
        .unwrap();
    assert!(room.lock().await.audio_mix, "the creator asked for a mix");
    // A later joiner's claim does not change the room, and a room without a claim follows the config.
    let (tx, _rx) = outbox();
    let forward = RoomClaims { topology: None, audio_mode: Some(AudioMode::Forward) };
    hub.join_with(
        &room_id("mixed"),
        Identity("b".into()),
        Grants::participant(),
        ParticipantKind::Signaling,
        Some(tx),
        forward,
    )
    .await
    .unwrap();
    assert!(room.lock().await.audio_mix);
    let plain = connect(&hub, "plain", "c").await;
    assert!(!plain.room.lock().await.audio_mix);
}
