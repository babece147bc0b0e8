//! What the supervisor publishes for the handles: a snapshot they read without waiting (nodes,
//! room peers, health, clock offset) and the event receiver, taken once.

use std::collections::HashMap;

use parking_lot::{Mutex, RwLock};
use sfu_proto::RoomId;
use tokio::sync::mpsc;

use super::meter;
use crate::Health;
use crate::membership::{LeaseMember, MembershipEvent, NodeEntry};

/// Events queued for the receiver before the oldest unread ones make new ones drop.
pub const EVENT_QUEUE: usize = 1024;

/// The supervisor's last word on everything the handles ask about.
pub(super) struct Snapshot {
    /// Live nodes other than this one, from the last beat.
    pub nodes: Vec<NodeEntry>,
    /// Other holders of each held room, as last heard (join answer or beat).
    pub rooms: HashMap<RoomId, Vec<LeaseMember>>,
    pub health: Health,
    /// Redis's `TIME` minus this node's wall clock at the last beat, in milliseconds.
    pub redis_offset_ms: Option<i64>,
}

pub(super) struct Shared {
    pub snapshot: RwLock<Snapshot>,
    pub events: Mutex<Option<mpsc::Receiver<MembershipEvent>>>,
}

impl Shared {
    pub fn new(events: mpsc::Receiver<MembershipEvent>) -> Self {
        let snapshot =
            Snapshot { nodes: Vec::new(), rooms: HashMap::new(), health: Health::Degraded, redis_offset_ms: None };
        Self { snapshot: RwLock::new(snapshot), events: Mutex::new(Some(events)) }
    }
}

/// The sending side of the event channel: never waits; a full queue drops the event, counted in
/// `sfu_cluster_events_dropped_total` (the supervisor must not stall on a slow reader, and every
/// event's state is also in the snapshot).
pub(super) struct EventSink(pub mpsc::Sender<MembershipEvent>);

impl EventSink {
    pub fn send(&self, event: MembershipEvent) {
        match self.0.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                meter::event_dropped();
                tracing::debug!(?event, "cluster: event queue full, event dropped");
            }
        }
    }
}
