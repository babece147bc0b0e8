//! Cluster membership for rooms that span nodes (docs/cluster.md).
//!
//! [`membership::Membership`] is a sans-IO core: it decides every Redis command a node sends
//! (heartbeats, room leases, the compare-and-delete of a room record) from inputs that carry
//! the time, and holds the Lua scripts those commands run. [`RedisCluster`] is its driver
//! against a real Redis: a handle and one supervisor task (`redis_cluster/`), which drives the
//! core the same way the tests drive it against `testing::FakeRedis` in virtual time:
//!
//! 1. call an input (`join_room`, `leave_room`, `handle_reply`, `handle_timeout`, ...) with `now`;
//! 2. send every [`membership::Membership::poll_command`] (as `EVALSHA` of its script, see
//!    [`membership::RedisCmd::to_call`]) and report exactly one outcome for each with
//!    `handle_reply`: the decoded answer, or a failure (the response timeout of 1 s, a dropped
//!    connection). The core waits for it: a command never reported would stop the beats;
//! 3. take every `poll_event`;
//! 4. sleep until `poll_timeout`, then `handle_timeout`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod any;
mod clock;
mod cluster;
mod cluster_node;
mod lease;
mod local;
pub mod membership;
pub mod mesh;
mod node;
mod redis_cluster;
#[cfg(feature = "testing")]
pub mod testing;

pub use any::{AnyCluster, ClusterMode, start};
pub use cluster::{Cluster, ClusterEvent};
pub use cluster_node::{ClusterNode, ClusterSettings, pick_node};
pub use lease::RoomLease;
pub use local::LocalCluster;
pub use node::{BootId, Health, NodeId, NodeLoad, NodeRecord, NodeState};
pub use redis_cluster::{JOIN_WAIT, RedisCluster, StartError};
