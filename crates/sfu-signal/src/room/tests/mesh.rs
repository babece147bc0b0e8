//! Mesh rooms: the topology decision with its hysteresis (in virtual time, on the sans-IO
//! [`Topology`]), and through the hub: who is told what, the relay of `peer_signal` between
//! the members of a mesh only, and the refusals.

use sfu_proto::{
    ErrorCode, IceCandidate, LeaveReason, MeshPeer, ParticipantId, SdpKind, ServerMessage, SessionDescription,
    TopologyMode, TopologySetting,
};
use std::time::{Duration, Instant};

use super::*;
use crate::config::RoomsConfig;
use crate::room::{PeerSignal, Topology, TopologyPolicy};

const HYSTERESIS: Duration = Duration::from_secs(5);

fn policy(setting: TopologySetting, max_members: usize) -> TopologyPolicy {
    TopologyPolicy { setting, max_members, hysteresis: HYSTERESIS }
}

fn pid(n: u32) -> ParticipantId {
    ParticipantId(format!("PA_{n}"))
}

#[test]
fn auto_meshes_while_small_leaves_at_once_and_returns_after_the_hysteresis() {
    let t0 = Instant::now();
    let mut topology = Topology::new(policy(TopologySetting::Auto, 2));
    topology.member_joined(pid(1));
    assert!(topology.review(t0, false), "the first review is news");
    assert_eq!(topology.mode(), TopologyMode::Mesh);
    topology.member_joined(pid(2));
    assert!(topology.review(t0, false), "a new mesh member is news");
    assert_eq!(topology.peers_for(&pid(1)), vec![MeshPeer { participant_id: pid(2), polite: false, connection: 2 }]);
    assert_eq!(topology.peers_for(&pid(2)), vec![MeshPeer { participant_id: pid(1), polite: true, connection: 2 }]);

    topology.member_joined(pid(3));
    assert!(topology.review(t0, false));
    assert_eq!(topology.mode(), TopologyMode::Sfu, "one more than the mesh holds: the SFU at once");
    assert!(topology.peers_for(&pid(1)).is_empty());
    assert_eq!(topology.poll_timeout(), None, "nothing to wait for while the room is too big");

    let t1 = t0 + Duration::from_secs(10);
    topology.member_left(&pid(3));
    assert!(!topology.review(t1, false), "small again, but the SFU stays for the hysteresis");
    assert_eq!(topology.poll_timeout(), Some(t1 + HYSTERESIS));
    assert!(!topology.review(t1 + HYSTERESIS - Duration::from_millis(1), false));
    assert_eq!(topology.mode(), TopologyMode::Sfu);
    assert!(topology.review(t1 + HYSTERESIS, false));
    assert_eq!(topology.mode(), TopologyMode::Mesh);
    assert_eq!(topology.poll_timeout(), None);
    assert!(topology.both_in_mesh(&pid(1), &pid(2)));
    assert_eq!(topology.connection(&pid(1), &pid(2)), Some(4), "a new connection after the SFU spell");
    assert_eq!(topology.peers_for(&pid(2))[0].connection, 4, "both ends are told the same number");
}

/// The pair's connection number changes only when the two meet again: a member joining or
/// leaving a bigger mesh leaves the others' connections alone.
#[test]
fn connections_keep_their_number_while_the_pair_stays_in_the_mesh() {
    let t0 = Instant::now();
    let mut topology = Topology::new(policy(TopologySetting::Mesh, 3));
    topology.member_joined(pid(1));
    topology.member_joined(pid(2));
    assert!(topology.review(t0, false));
    let first = topology.connection(&pid(1), &pid(2)).unwrap();
    topology.member_joined(pid(3));
    assert!(topology.review(t0, false));
    assert_eq!(topology.connection(&pid(1), &pid(2)), Some(first), "1 and 2 keep their connection");
    let with_3 = topology.connection(&pid(1), &pid(3)).unwrap();
    assert!(with_3 > first);
    assert_eq!(topology.connection(&pid(2), &pid(3)), Some(with_3));
    topology.member_left(&pid(3));
    assert!(topology.review(t0, false));
    assert_eq!(topology.connection(&pid(1), &pid(2)), Some(first));
    assert_eq!(topology.connection(&pid(1), &pid(3)), None);
    assert_eq!(topology.connection(&pid(1), &pid(1)), None);
}

#[test]
fn a_blip_of_growth_restarts_the_hysteresis() {
    let t0 = Instant::now();
    let mut topology = Topology::new(policy(TopologySetting::Auto, 2));
    for n in 1..=3 {
        topology.member_joined(pid(n));
    }
    topology.review(t0, false);
    topology.member_left(&pid(3));
    topology.review(t0 + Duration::from_secs(1), false);
    // Someone joins and leaves again within the hysteresis: the wait starts over.
    topology.member_joined(pid(4));
    topology.review(t0 + Duration::from_secs(3), false);
    topology.member_left(&pid(4));
    topology.review(t0 + Duration::from_secs(4), false);
    assert!(!topology.review(t0 + Duration::from_secs(8), false), "5 s after the first shrink is not enough");
    assert!(topology.review(t0 + Duration::from_secs(9), false));
    assert_eq!(topology.mode(), TopologyMode::Mesh);
}

#[test]
fn blockers_sfu_and_forced_mesh() {
    let t0 = Instant::now();
    let mut auto = Topology::new(policy(TopologySetting::Auto, 4));
    auto.member_joined(pid(1));
    auto.member_joined(pid(2));
    auto.review(t0, false);
    assert!(auto.review(t0, true), "a participant who cannot mesh (WHIP, viewer, other node) ends the mesh");
    assert_eq!(auto.mode(), TopologyMode::Sfu);

    let mut sfu = Topology::new(policy(TopologySetting::Sfu, 4));
    sfu.member_joined(pid(1));
    sfu.member_joined(pid(2));
    sfu.review(t0, false);
    assert_eq!(sfu.mode(), TopologyMode::Sfu);
    assert!(!sfu.announces());
    assert!(!sfu.review(t0 + Duration::from_secs(60), false), "sfu never meshes");

    let mut forced = Topology::new(policy(TopologySetting::Mesh, 3));
    for n in 1..=3 {
        assert!(!forced.refuses_more());
        forced.member_joined(pid(n));
    }
    assert!(forced.refuses_more());
    forced.review(t0, false);
    assert_eq!(forced.mode(), TopologyMode::Mesh);
    let roles: Vec<bool> = forced.peers_for(&pid(2)).iter().map(|p| p.polite).collect();
    assert_eq!(roles, vec![true, false], "polite towards the earlier joiner, impolite towards the later");
}

fn mesh_hub(topology: TopologySetting, max: usize) -> TestHub {
    let rooms = RoomsConfig { topology, mesh_max_participants: max, mesh_hysteresis_ms: 5000 };
    Hub::new(FakeMedia::default(), single_node(), DEPARTURE, Limits::default(), AudioConfig::default(), rooms)
}

fn topologies(messages: &[ServerMessage]) -> Vec<(TopologyMode, Vec<MeshPeer>)> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Topology { mode, peers } => Some((*mode, peers.clone())),
            _ => None,
        })
        .collect()
}

fn offer_to(to: &ParticipantId) -> PeerSignal {
    PeerSignal {
        to: to.clone(),
        connection: None,
        description: Some(SessionDescription { kind: SdpKind::Offer, sdp: "v=0\r\n".into() }),
        candidate: None,
        tracks: Vec::new(),
        moved: None,
    }
}

async fn relay(hub: &TestHub, from: &Client, signal: PeerSignal) -> Result<(), ErrorCode> {
    let mut room = from.room.lock().await;
    hub.relay_peer_signal(&mut room, &from.id, signal).map_err(|e| e.code)
}

#[tokio::test]
async fn two_in_auto_are_told_the_mesh_and_a_third_switches_everyone_to_the_sfu() {
    let hub = mesh_hub(TopologySetting::Auto, 2);
    let mut a = connect(&hub, "r", "a").await;
    assert_eq!(topologies(&a.messages()), vec![(TopologyMode::Mesh, vec![])]);
    let mut b = connect(&hub, "r", "b").await;
    assert_eq!(
        topologies(&a.messages()),
        vec![(TopologyMode::Mesh, vec![MeshPeer { participant_id: b.id.clone(), polite: false, connection: 2 }])]
    );
    assert_eq!(
        topologies(&b.messages()),
        vec![(TopologyMode::Mesh, vec![MeshPeer { participant_id: a.id.clone(), polite: true, connection: 2 }])]
    );

    // Relayed between the two, with the sender named; nothing else goes to anyone.
    let candidate = IceCandidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
        sdp_mid: None,
        sdp_m_line_index: Some(0),
        username_fragment: Some("aB3d".into()),
    };
    let signal = PeerSignal { candidate: Some(candidate.clone()), description: None, ..offer_to(&b.id) };
    relay(&hub, &a, signal).await.unwrap();
    let got = b.messages();
    assert!(
        matches!(&got[..], [ServerMessage::PeerSignal { from, candidate: Some(c), description: None, connection: Some(2), .. }] if *from == a.id && *c == candidate),
        "{got:?}"
    );
    assert!(a.messages().is_empty());
    assert_eq!(relay(&hub, &a, offer_to(&a.id)).await, Err(ErrorCode::UnknownPeer), "not to oneself");
    assert_eq!(relay(&hub, &a, offer_to(&pid(99))).await, Err(ErrorCode::UnknownPeer));
    let empty = PeerSignal { description: None, ..offer_to(&b.id) };
    assert_eq!(relay(&hub, &a, empty).await, Err(ErrorCode::BadMessage));

    let mut c = connect(&hub, "r", "c").await;
    assert_eq!(topologies(&a.messages()), vec![(TopologyMode::Sfu, vec![])]);
    assert_eq!(topologies(&b.messages()), vec![(TopologyMode::Sfu, vec![])]);
    assert_eq!(topologies(&c.messages()), vec![(TopologyMode::Sfu, vec![])]);
    assert_eq!(relay(&hub, &a, offer_to(&b.id)).await, Err(ErrorCode::NotMesh), "no relay outside mesh mode");
    assert!(b.messages().iter().all(|m| !matches!(m, ServerMessage::PeerSignal { .. })));

    // Back to two: the SFU stays for the hysteresis (the timer, not tested here, ends it).
    leave(&hub, &c, LeaveReason::Left).await;
    assert!(topologies(&a.messages()).is_empty());
    assert_eq!(a.room.lock().await.topology.mode(), TopologyMode::Sfu);
    assert!(a.room.lock().await.topology_review_at.is_some(), "a review is scheduled");
}

/// After an SFU spell the two meet again on a new connection: a signal the old one sent late
/// is refused (applied to the new connection it would break it), the new one's is relayed.
#[tokio::test]
async fn after_an_sfu_spell_signals_of_the_old_connection_are_refused() {
    let hub = mesh_hub(TopologySetting::Auto, 2);
    let mut a = connect(&hub, "r", "a").await;
    let mut b = connect(&hub, "r", "b").await;
    let old = a.room.lock().await.topology.connection(&a.id, &b.id).unwrap();
    let c = connect(&hub, "r", "c").await;
    leave(&hub, &c, LeaveReason::Left).await;
    a.room.lock().await.review_topology(Instant::now() + HYSTERESIS);
    a.messages();
    let told = topologies(&b.messages());
    let Some((TopologyMode::Mesh, peers)) = told.last() else { panic!("{told:?}") };
    let new = peers[0].connection;
    assert!(new > old, "{new} after {old}");

    let late = PeerSignal { connection: Some(old), ..offer_to(&b.id) };
    assert_eq!(relay(&hub, &a, late).await, Err(ErrorCode::StaleSignal));
    assert!(b.messages().is_empty());
    relay(&hub, &a, PeerSignal { connection: Some(new), ..offer_to(&b.id) }).await.unwrap();
    let got = b.messages();
    assert!(matches!(&got[..], [ServerMessage::PeerSignal { connection: Some(n), .. }] if *n == new), "{got:?}");
}

#[tokio::test]
async fn the_room_creators_claim_wins_and_sfu_rooms_say_nothing() {
    let hub = mesh_hub(TopologySetting::Sfu, 2);
    let (tx, _rx) = outbox();
    let claim = Some(TopologySetting::Auto);
    let (room, a) = hub
        .join_with(
            &room_id("claimed"),
            Identity("a".into()),
            Grants::participant(),
            ParticipantKind::Signaling,
            Some(tx),
            RoomClaims { topology: claim, audio_mode: None },
        )
        .await
        .unwrap();
    assert_eq!(room.lock().await.topology.mode(), TopologyMode::Mesh);
    // A later joiner's claim does not change the room.
    let (tx, _rx) = outbox();
    hub.join_with(
        &room_id("claimed"),
        Identity("b".into()),
        Grants::participant(),
        ParticipantKind::Signaling,
        Some(tx),
        RoomClaims { topology: Some(TopologySetting::Sfu), audio_mode: None },
    )
    .await
    .unwrap();
    let guard = room.lock().await;
    assert_eq!(guard.topology.mode(), TopologyMode::Mesh);
    assert_eq!(guard.topology.peers_for(&a).len(), 1);
    drop(guard);

    let mut plain = connect(&hub, "plain", "x").await;
    let _other = connect(&hub, "plain", "y").await;
    assert!(topologies(&plain.messages()).is_empty(), "an sfu room never mentions topology");
}

#[tokio::test]
async fn a_forced_mesh_refuses_one_more_and_whip() {
    let hub = mesh_hub(TopologySetting::Mesh, 2);
    let a = connect(&hub, "m", "a").await;
    let _b = connect(&hub, "m", "b").await;
    let (tx, _rx) = outbox();
    let third = hub
        .join(&room_id("m"), Identity("c".into()), Grants::participant(), ParticipantKind::Signaling, Some(tx))
        .await;
    assert_eq!(third.err().map(|e| e.code), Some(ErrorCode::MeshFull));
    let whip = hub.join(&room_id("m"), Identity("w".into()), Grants::participant(), ParticipantKind::Whip, None).await;
    assert_eq!(whip.err().map(|e| e.code), Some(ErrorCode::MeshFull));
    // The same identity coming back replaces its session, full or not.
    let again = connect(&hub, "m", "a").await;
    assert_ne!(again.id, a.id);
    assert_eq!(again.room.lock().await.participants.len(), 2);
    assert_eq!(hub.member_count(), 2, "the refused joins took no place");
}

#[tokio::test]
async fn relayed_signals_are_rate_bounded() {
    let hub = mesh_hub(TopologySetting::Auto, 2);
    let a = connect(&hub, "rate", "a").await;
    let mut b = connect(&hub, "rate", "b").await;
    let mut refused = 0;
    for _ in 0..150 {
        if relay(&hub, &a, offer_to(&b.id)).await == Err(ErrorCode::RateLimited) {
            refused += 1;
        }
    }
    let relayed = b.messages().iter().filter(|m| matches!(m, ServerMessage::PeerSignal { .. })).count();
    assert!(refused >= 40, "a burst of 150 is cut off (refused {refused})");
    assert_eq!(relayed + refused, 150);
}

/// A switch note goes in either mode (after a switch to the SFU the room is no mesh, and the
/// note is what lets the peer close its mesh connection), but only to another participant.
#[tokio::test]
async fn switch_notes_are_relayed_in_sfu_mode_too() {
    let hub = mesh_hub(TopologySetting::Auto, 2);
    let a = connect(&hub, "r", "a").await;
    let mut b = connect(&hub, "r", "b").await;
    let _c = connect(&hub, "r", "c").await;
    assert_eq!(a.room.lock().await.topology.mode(), TopologyMode::Sfu);
    b.messages();
    let note = |to: &ParticipantId| PeerSignal {
        description: None,
        connection: Some(2),
        moved: Some(TopologyMode::Sfu),
        ..offer_to(to)
    };
    relay(&hub, &a, note(&b.id)).await.unwrap();
    let got = b.messages();
    assert!(
        matches!(&got[..], [ServerMessage::PeerSignal { from, moved: Some(TopologyMode::Sfu), connection: Some(2), description: None, candidate: None, .. }] if *from == a.id),
        "{got:?}"
    );
    assert_eq!(relay(&hub, &a, note(&a.id)).await, Err(ErrorCode::UnknownPeer), "not to oneself");
    assert_eq!(relay(&hub, &a, note(&pid(99))).await, Err(ErrorCode::UnknownPeer));
    // A description still needs the mesh.
    assert_eq!(
        relay(&hub, &a, PeerSignal { moved: Some(TopologyMode::Sfu), ..offer_to(&b.id) }).await,
        Err(ErrorCode::NotMesh)
    );
}
