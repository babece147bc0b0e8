//! Membership against a real Redis: [`RedisCluster`], a cheap handle, and one supervisor task
//! that owns the connection (`link.rs`) and the [`Membership`](crate::membership::Membership)
//! core, and drives the core as the crate docs describe (`supervisor.rs`). Handles never touch
//! Redis: they queue requests for the supervisor and read the snapshot it publishes.
//!
//! Redis being down never fails a call: `start` only fails on a URL it cannot parse, a join
//! that Redis does not answer within [`JOIN_WAIT`] returns unverified, and everything written
//! while Redis was away is written again by the next beats.

mod exec;
mod link;
mod meter;
mod shared;
mod supervisor;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sfu_proto::RoomId;
use tokio::sync::{mpsc, oneshot};

use crate::membership::{LeaseMember, MembershipEvent, NodeEntry, RoomSid};
use crate::{Health, NodeLoad, NodeRecord, NodeState, RoomLease};
#[cfg(feature = "testing")]
pub(crate) use exec::{Failure, run_command, run_script};
#[cfg(feature = "testing")]
pub(crate) use link::manager_config;
use shared::Shared;
use supervisor::{Request, Supervisor};

/// How long `join_room` waits for Redis's answer before the room starts unverified.
pub const JOIN_WAIT: Duration = Duration::from_millis(300);

/// Why [`RedisCluster::start`] failed. Redis being unreachable is not one of them.
#[derive(Debug)]
pub enum StartError {
    /// The Redis URL does not parse (scheme, host, port, database).
    InvalidUrl(String),
    /// Called outside a Tokio runtime: the supervisor has nowhere to run.
    NoRuntime,
    /// The control connection's port could not be bound.
    Relay(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::InvalidUrl(why) => write!(f, "invalid cluster.redis_url: {why}"),
            StartError::NoRuntime => f.write_str("the cluster supervisor needs a Tokio runtime"),
            StartError::Relay(why) => write!(f, "cannot listen for other nodes on cluster.relay_addr {why}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A node's membership in a Redis-coordinated cluster. Clones share one supervisor task,
/// which ends (without unregistering: to others the node died) when the last clone is dropped.
#[derive(Clone)]
pub struct RedisCluster {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeRecord,
    requests: mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    /// Numbers the sids of leases made without the supervisor (it stopped: never expected).
    fallback_sids: AtomicU64,
}

impl RedisCluster {
    /// Starts the supervisor on the current Tokio runtime. It connects in the background: a
    /// Redis that is unreachable now leaves the node `Degraded` and retrying, not failed.
    pub fn start(me: NodeRecord, url: &str) -> Result<Self, StartError> {
        let client = redis::Client::open(url).map_err(|e| StartError::InvalidUrl(e.to_string()))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let (requests, inbox) = mpsc::unbounded_channel();
        let (events, receiver) = mpsc::channel(shared::EVENT_QUEUE);
        let shared = Arc::new(Shared::new(receiver));
        let supervisor = Supervisor::new(me.clone(), client, inbox, shared.clone(), events, Instant::now());
        runtime.spawn(supervisor.run());
        Ok(Self { inner: Arc::new(Inner { me, requests, shared, fallback_sids: AtomicU64::new(0) }) })
    }

    /// This node.
    pub fn node(&self) -> &NodeRecord {
        &self.inner.me
    }

    fn request(&self, request: Request) -> bool {
        self.inner.requests.send(request).is_ok()
    }

    /// Load to write at the next beat.
    pub fn report_load(&self, load: NodeLoad) {
        self.request(Request::Load(load));
    }

    /// A new state (Serving, Draining), written at once: the node beats again.
    pub fn set_state(&self, state: NodeState) {
        self.request(Request::State(state));
    }

    /// The first local participant of `room` arrived: takes a lease. Waits at most
    /// [`JOIN_WAIT`] for Redis; then the lease is unverified, with the sid this node proposes
    /// (`RM_{boot}_{n}`) and the peers last known, and the answer comes later as
    /// [`MembershipEvent::Joined`] on the event channel. A join answered in time sends no event.
    pub async fn join_room(&self, room: &RoomId) -> RoomLease {
        let (reply, answer) = oneshot::channel();
        if self.request(Request::Join { room: room.clone(), reply }) {
            // The supervisor answers by JOIN_WAIT itself; this margin is for a stalled runtime.
            if let Ok(Ok(lease)) = tokio::time::timeout(JOIN_WAIT * 4, answer).await {
                return lease;
            }
        }
        let n = self.inner.fallback_sids.fetch_add(1, Ordering::Relaxed);
        let sid = RoomSid(format!("RM_{}_h{n}", self.inner.me.boot));
        RoomLease { sid, peers: self.room_peers(room), verified: false }
    }

    /// The last local participant of `room` left. `linked_peers_hold_it`: a peer linked to this
    /// node says it holds the room (then the record is never deleted by this leave).
    pub fn leave_room(&self, room: &RoomId, linked_peers_hold_it: bool) {
        self.request(Request::Leave { room: room.clone(), linked_peers_hold_it });
    }

    /// Live nodes other than this one, as of the last beat.
    pub fn nodes(&self) -> Vec<NodeEntry> {
        self.inner.shared.snapshot.read().nodes.clone()
    }

    /// The other holders of a room this node holds, as last heard from Redis.
    pub fn room_peers(&self, room: &RoomId) -> Vec<LeaseMember> {
        self.inner.shared.snapshot.read().rooms.get(room).cloned().unwrap_or_default()
    }

    /// Whether Redis answered the last command (`Degraded` until it first does).
    pub fn health(&self) -> Health {
        self.inner.shared.snapshot.read().health
    }

    /// Redis's `TIME` minus this node's wall clock, in milliseconds, from the last beat (to
    /// within that beat's round trip); `None` before the first.
    pub fn redis_offset_ms(&self) -> Option<i64> {
        self.inner.shared.snapshot.read().redis_offset_ms
    }

    /// The membership events (once; `None` after). The channel holds 1024: events that find it
    /// full are dropped and counted in `sfu_cluster_events_dropped_total`, so read it steadily.
    pub fn take_events(&self) -> Option<mpsc::Receiver<MembershipEvent>> {
        self.inner.shared.events.lock().take()
    }

    /// End of drain: removes this node's key and registry entry and ends its leases. True if
    /// Redis confirmed it within `timeout`. Nothing is written after it (no more beats).
    pub async fn unregister(&self, timeout: Duration) -> bool {
        let (reply, done) = oneshot::channel();
        if !self.request(Request::Unregister { reply }) {
            return false;
        }
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
    }
}
