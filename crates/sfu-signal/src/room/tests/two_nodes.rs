//! One room on two nodes: what each node's participants see of the other's, with the peer
//! messages carried by hand between two hubs (the mesh's own tests cover the wire).

use sfu_cluster::mesh::PeerMessage;
use sfu_cluster::testing::{RecordingCluster, Sent};
use sfu_cluster::{AnyCluster, Cluster};
use sfu_core::LayerSet;

use super::*;

fn node(name: &str, clock_ms: u64) -> TestHub {
    let cluster = AnyCluster::Recording(RecordingCluster::new(name, clock_ms));
    Hub::new(FakeMedia::default(), cluster, DEPARTURE, Limits::default(), AudioConfig::default(), Default::default())
}

fn recording(hub: &TestHub) -> &RecordingCluster {
    match &hub.cluster {
        AnyCluster::Recording(c) => c,
        _ => unreachable!("test nodes record"),
    }
}

/// Delivers what `from` sent (to everyone, or to `to`) to `to`; returns how many messages.
async fn carry(from: &TestHub, to: &TestHub) -> usize {
    let me = to.cluster.node().node.clone();
    let sender = from.cluster.node().node.clone();
    let mut n = 0;
    for sent in recording(from).take_sent() {
        let message = match sent {
            Sent::All(m) => m,
            Sent::To(node, m) if node == me => m,
            Sent::To(..) => continue,
        };
        to.on_peer_message(sender.clone(), message).await;
        n += 1;
    }
    n
}

/// Carries messages both ways until neither side has anything more to say.
async fn settle(a: &TestHub, b: &TestHub) {
    for _ in 0..10 {
        if carry(a, b).await + carry(b, a).await == 0 {
            return;
        }
    }
    panic!("the nodes kept talking");
}

fn joined_ids(messages: &[ServerMessage]) -> Vec<ParticipantId> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ParticipantJoined { participant } => Some(participant.id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn participants_on_two_nodes_see_each_other_and_each_others_tracks() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    let mut alice = connect(&a, "r", "alice").await;
    settle(&a, &b).await;
    let mut bob = connect(&b, "r", "bob").await;
    settle(&a, &b).await;

    // Bob's node asked for the room's snapshot when it took the room; Alice came with it, after
    // Bob's `joined` (which listed nobody) had gone out.
    let to_bob = bob.messages();
    assert!(matches!(&to_bob[..], [ServerMessage::Joined { participants, .. }, ..] if participants.is_empty()));
    assert_eq!(joined_ids(&to_bob), [alice.id.clone()]);
    assert_eq!(joined_ids(&alice.messages()), [bob.id.clone()], "alice hears of bob");

    publish(&a, &alice, &["audio", "video"]).await.unwrap();
    settle(&a, &b).await;
    let published: Vec<TrackId> = bob
        .messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::TrackPublished { participant_id, track } if participant_id == alice.id => Some(track.id),
            _ => None,
        })
        .collect();
    let alice_tracks: Vec<TrackId> = tracks_of(&alice).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(published, alice_tracks);
    {
        let room = bob.room.lock().await;
        let remote = &room.remote[&alice.id];
        assert!(remote.tracks.iter().all(|t| !t.mime.is_empty() && t.clock_rate > 0), "codecs crossed");
    }

    // Mute crosses; so does the leave, with the tracks withdrawn first.
    {
        let mut room = alice.room.lock().await;
        a.set_muted(&mut room, &alice.id, &alice_tracks[1], true).unwrap();
    }
    settle(&a, &b).await;
    assert!(bob.messages().iter().any(|m| matches!(m,
        ServerMessage::TrackMuted { track_id, muted: true, .. } if *track_id == alice_tracks[1])));
    leave(&a, &alice, LeaveReason::Left).await;
    settle(&a, &b).await;
    let after: Vec<ServerMessage> = bob.messages();
    let unpublished = after.iter().filter(|m| matches!(m, ServerMessage::TrackUnpublished { .. })).count();
    assert_eq!(unpublished, 2, "{after:?}");
    assert!(
        matches!(after.last(), Some(ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Left, .. }) if *participant_id == alice.id)
    );
    assert!(bob.room.lock().await.remote.is_empty());
}

#[tokio::test]
async fn a_link_that_comes_up_late_merges_the_room_and_a_lost_peer_takes_its_people_with_it() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    let mut alice = connect(&a, "r", "alice").await;
    let mut bob = connect(&b, "r", "bob").await;
    // Nothing crossed yet (no link): each sees only itself.
    recording(&a).take_sent();
    recording(&b).take_sent();
    a.on_peer_up(&b.cluster.node().node).await;
    b.on_peer_up(&a.cluster.node().node).await;
    settle(&a, &b).await;
    assert_eq!(joined_ids(&alice.messages()), [bob.id.clone()]);
    assert_eq!(joined_ids(&bob.messages()), [alice.id.clone()]);

    a.on_peer_down(&b.cluster.node().node).await;
    assert!(alice.messages().iter().any(|m| matches!(m,
        ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Timeout, .. } if *participant_id == bob.id)));
    assert!(alice.room.lock().await.remote.is_empty());
}

#[tokio::test]
async fn one_identity_on_two_nodes_keeps_only_the_newer_session() {
    let (a, b) = (node("A", 1_000), node("B", 2_000));
    let mut old = connect(&a, "r", "carol").await;
    settle(&a, &b).await;
    let mut new = connect(&b, "r", "carol").await;
    settle(&a, &b).await;
    // Node A removes its own, older, session; node B keeps the newer one.
    assert!(old.received().iter().any(|o| matches!(o, Outgoing::Close(sfu_proto::CloseCode::Replaced, _))));
    assert!(!a.room(&room_id("r")).is_some_and(|r| r.try_lock().is_ok_and(|r| r.participants.contains_key(&old.id))));
    assert!(new.received().iter().all(|o| !matches!(o, Outgoing::Close(..))));
    let room = new.room.lock().await;
    assert!(room.participants.contains_key(&new.id) && room.remote.is_empty(), "B no longer lists the old one");
}

#[tokio::test]
async fn data_messages_go_only_to_the_nodes_that_hold_the_room() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    let alice = connect(&a, "r", "alice").await;
    let bob = connect(&b, "r", "bob").await;
    settle(&a, &b).await;
    let _elsewhere = connect(&b, "other", "dave").await;
    settle(&a, &b).await;

    let room = alice.room.lock().await;
    a.share_data(&room, &alice.id, true, &bytes::Bytes::from_static(b"hi bob"));
    drop(room);
    let sent = recording(&a).take_sent();
    assert!(matches!(&sent[..], [Sent::To(node, _)] if node.as_str() == "B"), "{sent:?}");
    for s in sent {
        if let Sent::To(_, m) = s {
            b.on_peer_message(a.cluster.node().node.clone(), m).await;
        }
    }
    assert_eq!(calls_on(&b, bob.publisher_conn).iter().filter(|c| matches!(c, Call::SendData { .. })).count(), 1);
}

/// Connects `identity` to `b` while the two nodes talk (B asks for the room's snapshots while
/// the newcomer waits for its welcome; A answers).
async fn connect_while_talking(a: &TestHub, b: &TestHub, room: &'static str, identity: &'static str) -> Client {
    let b2 = b.clone();
    let joining = tokio::spawn(async move { connect(&b2, room, identity).await });
    while !joining.is_finished() {
        settle(a, b).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    joining.await.unwrap()
}

/// Both hubs open their media link to each other, as a `PeerUp` makes them.
fn link(a: &TestHub, b: &TestHub) {
    use sfu_cluster::mesh::keys::LinkParties;
    use sfu_cluster::mesh::{ClusterSecret, Side};
    let secret = ClusterSecret::new(vec![7; 32]).unwrap();
    let (na, nb) = (a.cluster.node().node.clone(), b.cluster.node().node.clone());
    let (ba, bb) = (a.cluster.node().boot.clone(), b.cluster.node().boot.clone());
    let parties =
        LinkParties { node_a: &na, boot_a: &ba, node_b: &nb, boot_b: &bb, nonce_a: &[1; 32], nonce_b: &[2; 32] };
    a.open_link(&nb, &parties.derive(&secret, Side::Dialer), &[]);
    b.open_link(&na, &parties.derive(&secret, Side::Responder), &[]);
}

#[tokio::test]
async fn a_track_crosses_once_to_a_node_with_subscribers_and_goes_when_its_publisher_does() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    link(&a, &b);
    let alice = connect(&a, "r", "alice").await;
    settle(&a, &b).await;
    let mut bob = connect(&b, "r", "bob").await;
    let mut carol = connect(&b, "r", "carol").await;
    settle(&a, &b).await;
    publish(&a, &alice, &["video"]).await.unwrap();
    settle(&a, &b).await;

    // B took the track once, whatever the number of its subscribers, and asked A for it.
    let relayed: Vec<TrackKey> = b
        .media
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::AddRelayTrack { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(relayed.len(), 1, "{:?}\n{:?}", b.media.calls(), bob.room.lock().await.remote);
    let (track, key_on_a) = tracks_of(&alice).await[0].clone();
    let outs: Vec<Call> = a.media.calls().into_iter().filter(|c| matches!(c, Call::AddRelayOut { .. })).collect();
    assert!(
        matches!(&outs[..], [Call::AddRelayOut { key, ssrcs, .. }] if *key == key_on_a && ssrcs.len() == 1),
        "{outs:?}"
    );
    // Both of B's subscribers receive the relay track, offered as Alice's.
    for client in [&mut bob, &mut carol] {
        assert!(
            calls_on(&b, client.subscriber_conn)
                .contains(&Call::AddDownTrack { conn: client.subscriber_conn, key: relayed[0] })
        );
        assert!(offers(&client.messages()).iter().any(|o| o.contains(&(alice.id.clone(), track.clone()))));
    }

    // B's demand crosses to A, whose media plane selects those layers for the link (the shard
    // counts a wanted track of one layer as using layer 0). A's active layers cross back.
    b.on_relay_demand(relayed[0], LayerSet::EMPTY.with(0), Some(0)).await;
    let demand = recording(&b).take_sent();
    assert!(
        matches!(&demand[..], [Sent::To(n, PeerMessage::LinkLayers { used, wanted: Some(0), .. })] if n.as_str() == "A" && used == &[0]),
        "{demand:?}"
    );
    for sent in demand {
        if let Sent::To(_, m) = sent {
            a.on_peer_message(b.cluster.node().node.clone(), m).await;
        }
    }
    let selected: Vec<Call> =
        a.media.calls().into_iter().filter(|c| matches!(c, Call::SetRelayLayers { .. })).collect();
    assert!(
        matches!(&selected[..], [Call::SetRelayLayers { key, used, wanted: Some(0), .. }] if *key == key_on_a && *used == LayerSet::EMPTY.with(0)),
        "{selected:?}"
    );
    a.on_layers_active_here(key_on_a, [0u8, 1].into_iter().collect()).await;
    settle(&a, &b).await;
    assert!(b.media.calls().iter().any(|c| matches!(c, Call::RelayLayersActive { key, .. } if *key == relayed[0])));

    // Alice leaves: B drops the relay track and its subscriptions.
    leave(&a, &alice, LeaveReason::Left).await;
    settle(&a, &b).await;
    assert!(b.media.calls().contains(&Call::RemoveRelayTrack { key: relayed[0] }));
    assert!(b.media.down_tracks(bob.subscriber_conn).is_empty());
}

#[tokio::test]
async fn a_node_whose_last_participant_leaves_unsubscribes_from_the_origin() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    link(&a, &b);
    let alice = connect(&a, "r", "alice").await;
    publish(&a, &alice, &["audio"]).await.unwrap();
    settle(&a, &b).await;
    let bob = connect(&b, "r", "bob").await;
    settle(&a, &b).await;
    let key_on_a = tracks_of(&alice).await[0].1;
    assert!(
        a.media.calls().iter().any(|c| matches!(c, Call::AddRelayOut { key, .. } if *key == key_on_a)),
        "a late joiner on B pulls the track"
    );
    leave(&b, &bob, LeaveReason::Left).await;
    settle(&a, &b).await;
    assert!(a.media.calls().iter().any(|c| matches!(c, Call::RemoveRelayOut { key, .. } if *key == key_on_a)));
    assert!(alice.room.lock().await.relayed_to.values().all(|nodes| nodes.is_empty()));
}

#[tokio::test]
async fn the_first_participant_here_waits_a_moment_for_the_other_nodes_snapshots() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    recording(&b).set_holders(&["A"]);
    recording(&b).set_linked(&["A"]);
    let alice = connect(&a, "r", "alice").await;
    settle(&a, &b).await;
    let mut bob = connect_while_talking(&a, &b, "r", "bob").await;
    match &bob.messages()[..] {
        [ServerMessage::Joined { participants, .. }, ..] => {
            assert_eq!(participants.iter().map(|p| &p.id).collect::<Vec<_>>(), [&alice.id], "listed in joined")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_holder_that_never_answers_delays_the_welcome_by_at_most_300_ms() {
    let b = node("B", 1_000);
    recording(&b).set_holders(&["A"]);
    recording(&b).set_linked(&["A"]);
    let started = std::time::Instant::now();
    let mut bob = connect(&b, "r", "bob").await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_secs(2), "{waited:?}");
    assert!(matches!(&bob.messages()[..], [ServerMessage::Joined { .. }, ..]));
}

#[tokio::test]
async fn a_remote_track_that_arrives_while_a_newcomer_waits_for_its_welcome_is_in_its_first_offer() {
    let (a, b) = (node("A", 1_000), node("B", 1_000));
    link(&a, &b);
    recording(&b).set_holders(&["A"]);
    recording(&b).set_linked(&["A"]);
    let alice = connect(&a, "r", "alice").await;
    publish(&a, &alice, &["video"]).await.unwrap();
    settle(&a, &b).await;
    let mut bob = connect_while_talking(&a, &b, "r", "bob").await;
    let track = tracks_of(&alice).await[0].0.clone();
    let offered = offers(&bob.messages());
    assert!(offered.iter().any(|o| o.contains(&(alice.id.clone(), track.clone()))), "{offered:?}");
}
