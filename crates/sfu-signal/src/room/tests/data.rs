//! Data messages through [`DataRelay`]: each room relays on its own, sizes and rates are
//! checked, and the sender is told of what was refused.

use bytes::Bytes;
use sfu_proto::{DataRefusal, LeaveReason, ServerMessage};
use sfu_transport::{ConnId, DATA_MAX_MESSAGE_BYTES};
use std::time::Duration;

use super::{Call, TestHub, connect, hub, hub_with, leave, room_id};
use crate::config::Limits;
use crate::data_relay::{DataRelay, RELAY_IDLE};

/// Data messages the media plane was asked to send on `conn`.
fn sent_to(hub: &TestHub, conn: ConnId) -> usize {
    hub.media.calls().iter().filter(|c| matches!(c, Call::SendData { conn: to } if *to == conn)).count()
}

/// Lets the relay tasks run until `done` holds (true) or a second has passed (false).
async fn until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

fn refusals(messages: &[ServerMessage]) -> Vec<(DataRefusal, u64)> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::DataRefused { reason, bytes } => Some((*reason, *bytes)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_room_held_busy_does_not_hold_back_another_rooms_data() {
    let hub = hub();
    let a = connect(&hub, "one", "a").await;
    let b = connect(&hub, "one", "b").await;
    let c = connect(&hub, "two", "c").await;
    let d = connect(&hub, "two", "d").await;
    let mut relay = DataRelay::new(hub.limits());
    let busy = a.room.lock().await;
    relay.dispatch(&hub, a.publisher_conn, true, Bytes::from_static(b"to one"));
    relay.dispatch(&hub, c.publisher_conn, true, Bytes::from_static(b"to two"));
    assert!(until(|| sent_to(&hub, d.publisher_conn) == 1).await, "room two waited for room one");
    assert_eq!(sent_to(&hub, b.publisher_conn), 0);
    drop(busy);
    assert!(until(|| sent_to(&hub, b.publisher_conn) == 1).await, "room one's message was lost");
    assert_eq!((sent_to(&hub, a.publisher_conn), sent_to(&hub, c.publisher_conn)), (0, 0), "an echo");
}

#[tokio::test]
async fn a_flood_is_cut_to_the_rate_and_the_sender_told() {
    let hub = hub_with(Limits { data_messages_per_second: 5, ..Limits::default() });
    let mut a = connect(&hub, "room", "a").await;
    let b = connect(&hub, "room", "b").await;
    a.messages();
    let mut relay = DataRelay::new(hub.limits());
    for _ in 0..20 {
        relay.dispatch(&hub, a.publisher_conn, false, Bytes::from_static(&[1, 2, 3]));
    }
    assert!(until(|| sent_to(&hub, b.publisher_conn) == 5).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sent_to(&hub, b.publisher_conn), 5, "a second's worth, no more");
    // Fifteen refusals within 250 ms: one notice.
    assert_eq!(refusals(&a.messages()), [(DataRefusal::RateLimited, 3)]);
}

#[tokio::test]
async fn the_largest_message_goes_and_what_cannot_be_relayed_is_refused() {
    let hub = hub();
    let mut a = connect(&hub, "room", "a").await;
    let b = connect(&hub, "room", "b").await;
    a.messages();
    let mut relay = DataRelay::new(hub.limits());
    relay.dispatch(&hub, a.publisher_conn, false, Bytes::from(vec![7u8; DATA_MAX_MESSAGE_BYTES]));
    assert!(until(|| sent_to(&hub, b.publisher_conn) == 1).await);
    // Twice at once (a client ignoring the advertised size): one notice.
    for _ in 0..2 {
        relay.dispatch(&hub, a.publisher_conn, false, Bytes::from(vec![7u8; DATA_MAX_MESSAGE_BYTES + 1]));
    }
    // Within the advertised size, but escaping makes its envelope six times as large.
    relay.dispatch(&hub, a.publisher_conn, true, Bytes::from("\u{1}".repeat(DATA_MAX_MESSAGE_BYTES)));
    let max = DATA_MAX_MESSAGE_BYTES as u64;
    let mut told = Vec::new();
    assert!(
        until(|| {
            told.extend(refusals(&a.messages()));
            told.len() == 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    told.extend(refusals(&a.messages()));
    assert_eq!(told, [(DataRefusal::TooLarge, max + 1), (DataRefusal::TooLarge, max)]);
    assert_eq!(sent_to(&hub, b.publisher_conn), 1);
}

#[tokio::test(start_paused = true)]
async fn a_closed_rooms_relay_ends_and_the_name_gets_a_new_one() {
    let hub = hub();
    let a = connect(&hub, "room", "a").await;
    let b = connect(&hub, "room", "b").await;
    let mut relay = DataRelay::new(hub.limits());
    relay.dispatch(&hub, a.publisher_conn, true, Bytes::from_static(b"hi"));
    assert!(until(|| sent_to(&hub, b.publisher_conn) == 1).await);
    assert_eq!(relay.running_relays(), 1);
    leave(&hub, &a, LeaveReason::Left).await;
    leave(&hub, &b, LeaveReason::Left).await;
    assert!(hub.room(&room_id("room")).is_none());
    tokio::time::sleep(RELAY_IDLE + Duration::from_secs(1)).await;
    assert_eq!(relay.running_relays(), 0, "a closed room's relay is still running");

    let c = connect(&hub, "room", "c").await;
    let d = connect(&hub, "room", "d").await;
    relay.dispatch(&hub, c.publisher_conn, true, Bytes::from_static(b"again"));
    assert!(until(|| sent_to(&hub, d.publisher_conn) == 1).await);
    assert_eq!(relay.running_relays(), 1);
}

/// Many senders at their rate can fill a room's queue: what does not fit is refused, and the
/// sender is told at once rather than behind the same full queue.
#[tokio::test]
async fn a_room_whose_relay_is_behind_refuses_and_tells_the_sender() {
    let hub =
        hub_with(Limits { data_messages_per_second: 10_000, data_bytes_per_second: 10_000_000, ..Limits::default() });
    let mut a = connect(&hub, "room", "a").await;
    let b = connect(&hub, "room", "b").await;
    let mut relay = DataRelay::new(hub.limits());
    let busy = a.room.lock().await;
    // 256 fill the room's queue (257 if its relay took the first before waiting for the lock).
    for _ in 0..300 {
        relay.dispatch(&hub, a.publisher_conn, true, Bytes::from_static(b"x"));
    }
    drop(busy);
    let relayed = || sent_to(&hub, b.publisher_conn);
    assert!(until(|| relayed() >= 256).await, "{} relayed", relayed());
    let mut told = Vec::new();
    assert!(
        until(|| {
            told.extend(refusals(&a.messages()));
            !told.is_empty()
        })
        .await
    );
    assert_eq!(told, vec![(DataRefusal::RateLimited, 1)], "one notice per interval");
    assert!((256..=257).contains(&relayed()), "{} relayed: more than the queue held", relayed());
}
