//! Top-N audio: in a room above `audio.top_n_above`, only the loudest speakers' audio is
//! forwarded; the shards are told as places change hands, and a new subscriber starts with
//! each track's state.

use super::*;

fn hub_top_n(top_n: usize, above: usize) -> TestHub {
    Hub::new(
        FakeMedia::default(),
        single_node(),
        DEPARTURE,
        Limits::default(),
        AudioConfig { top_n, top_n_above: above, ..Default::default() },
        Default::default(),
    )
}

fn among(hub: &TestHub, key: TrackKey) -> Vec<bool> {
    hub.media
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::SetAmongLoudest { key: k, among } if k == key => Some(among),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn only_the_loudest_are_forwarded_and_a_clearly_louder_speaker_takes_a_place() {
    let hub = hub_top_n(1, 2);
    let alice = connect(&hub, "r", "alice").await;
    let bob = connect(&hub, "r", "bob").await;
    let carol = connect(&hub, "r", "carol").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    publish(&hub, &bob, &["audio"]).await.unwrap();
    let (alice_key, bob_key) = (tracks_of(&alice).await[0].1, tracks_of(&bob).await[0].1);

    hub.on_audio_levels(vec![(alice.publisher_conn, 0.2), (bob.publisher_conn, 0.1)]).await;
    assert_eq!(among(&hub, alice_key), Vec::<bool>::new(), "alice holds the place: nothing to change");
    assert_eq!(among(&hub, bob_key), vec![false], "bob is held back");

    // Bob, 10 % louder, is not enough; twice as loud is.
    hub.on_audio_levels(vec![(alice.publisher_conn, 0.2), (bob.publisher_conn, 0.22)]).await;
    assert_eq!(among(&hub, bob_key), vec![false]);
    hub.on_audio_levels(vec![(alice.publisher_conn, 0.2), (bob.publisher_conn, 0.4)]).await;
    assert_eq!(among(&hub, bob_key), vec![false, true]);
    assert_eq!(among(&hub, alice_key), vec![false]);

    // A newcomer's subscription to alice starts held back, to bob not.
    let dave = connect(&hub, "r", "dave").await;
    assert!(hub.media.added_held_back(dave.subscriber_conn, alice_key));
    assert!(!hub.media.added_held_back(dave.subscriber_conn, bob_key));

    // The room shrinks to the size where top-N stops: everyone is forwarded again.
    leave(&hub, &dave, LeaveReason::Left).await;
    leave(&hub, &carol, LeaveReason::Left).await;
    hub.on_audio_levels(vec![(bob.publisher_conn, 0.4)]).await;
    assert_eq!(among(&hub, alice_key), vec![false, true]);
}

#[tokio::test]
async fn a_small_room_forwards_everyone() {
    let hub = hub_top_n(1, 3);
    let alice = connect(&hub, "r", "alice").await;
    let bob = connect(&hub, "r", "bob").await;
    connect(&hub, "r", "carol").await;
    publish(&hub, &alice, &["audio"]).await.unwrap();
    publish(&hub, &bob, &["audio"]).await.unwrap();
    hub.on_audio_levels(vec![(alice.publisher_conn, 0.2), (bob.publisher_conn, 0.1)]).await;
    assert!(!hub.media.calls().iter().any(|c| matches!(c, Call::SetAmongLoudest { .. })));
}
