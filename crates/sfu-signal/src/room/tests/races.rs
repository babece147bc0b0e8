//! Joins and leaves that overlap. A room leaves the registry under its own lock, so a join that
//! waited for that lock must notice and go to the room now registered under the name.

use super::*;

/// A participant that joins while the room's last participant leaves must land in a room
/// others can find, not in the one being closed.
#[tokio::test]
async fn a_join_racing_the_last_leave_lands_in_an_open_room() {
    let hub = hub();
    let alice = connect(&hub, "r", "alice").await;
    // Alice's departure holds the room's lock while Bob's join waits for it.
    let mut closing = alice.room.lock().await;
    let joining = tokio::spawn({
        let hub = hub.clone();
        async move { connect(&hub, "r", "bob").await }
    });
    // Bounded: the join is blocked on the lock, so it cannot finish; give it turns to get there.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!joining.is_finished());
    hub.remove_participant(&mut closing, &alice.id, LeaveReason::Left).await;
    drop(closing);
    let bob = tokio::time::timeout(Duration::from_secs(5), joining).await.unwrap().unwrap();
    assert!(!Arc::ptr_eq(&bob.room, &alice.room), "the closed room was left behind");
    assert!(registered_with(&hub, "r", &bob.room, &[&bob.id]).await);
}

/// Many participants joining one room at once, on several threads, all end up together in
/// the one registered room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_joins_share_one_room() {
    let hub = hub();
    let joins: Vec<_> = (0..16)
        .map(|i| {
            let hub = hub.clone();
            tokio::spawn(async move { connect(&hub, "r", &format!("p{i}")).await })
        })
        .collect();
    let mut clients = Vec::new();
    for join in joins {
        clients.push(tokio::time::timeout(Duration::from_secs(10), join).await.unwrap().unwrap());
    }
    let ids: Vec<&ParticipantId> = clients.iter().map(|c| &c.id).collect();
    assert!(registered_with(&hub, "r", &clients[0].room, &ids).await);
    assert_eq!(hub.room_count(), 1);
}

/// The last participant leaving while others join, over and over on two threads: whatever the
/// interleaving, every joiner ends in the registered room and no room is left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_and_joins_interleaved_never_strand_a_joiner() {
    let hub = hub();
    for round in 0..50 {
        let name = format!("r{round}");
        let alice = connect(&hub, &name, "alice").await;
        let leaving = tokio::spawn({
            let hub = hub.clone();
            async move { leave(&hub, &alice, LeaveReason::Left).await }
        });
        let joining = tokio::spawn({
            let (hub, name) = (hub.clone(), name.clone());
            async move { connect(&hub, &name, "bob").await }
        });
        tokio::time::timeout(Duration::from_secs(10), leaving).await.unwrap().unwrap();
        let bob = tokio::time::timeout(Duration::from_secs(10), joining).await.unwrap().unwrap();
        assert!(registered_with(&hub, &name, &bob.room, &[&bob.id]).await, "round {round}");
        leave(&hub, &bob, LeaveReason::Left).await;
        assert!(hub.room(&room_id(&name)).is_none(), "round {round}");
    }
    assert_eq!(hub.room_count(), 0);
}

/// The same identity joining twice at once: exactly one session survives, in the registered
/// room, and the other is closed with 4409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_joins_of_one_identity_leave_one_session() {
    let hub = hub();
    let _bob = connect(&hub, "r", "bob").await;
    for round in 0..20 {
        let spawn_join = || {
            let hub = hub.clone();
            tokio::spawn(async move { join_only(&hub, "r", "alice", ParticipantKind::Signaling).await })
        };
        let (a, b) = (spawn_join(), spawn_join());
        let mut a = tokio::time::timeout(Duration::from_secs(10), a).await.unwrap().unwrap();
        let mut b = tokio::time::timeout(Duration::from_secs(10), b).await.unwrap().unwrap();
        let room = hub.room(&room_id("r")).unwrap();
        let guard = room.lock().await;
        let alices: Vec<&ParticipantId> =
            guard.participants.values().filter(|p| p.identity.as_str() == "alice").map(|p| &p.id).collect();
        assert_eq!(alices.len(), 1, "round {round}");
        let (survivor, replaced) = if alices[0] == &a.id { (&mut a, &mut b) } else { (&mut b, &mut a) };
        assert_eq!(alices[0], &survivor.id);
        assert!(
            replaced.received().iter().any(|o| matches!(o, Outgoing::Close(sfu_proto::CloseCode::Replaced, _))),
            "round {round}"
        );
        drop(guard);
        leave(&hub, survivor, LeaveReason::Left).await;
    }
}
