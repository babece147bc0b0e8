//! A virtual-time test bench for the membership core: [`FakeRedis`] (the scripts mirrored in
//! Rust on an in-memory keyspace), [`FakeClock`] (Redis's time, skewed from the nodes'), and
//! [`Sim`] (several cores, their local participants, a mesh reachability matrix, and the
//! invariants of docs/cluster.md checked after every step).

mod clock;
mod recording;
mod redis;
mod sim;

pub use crate::membership::scripts::{Keyspace, RoomDeletion};
pub use clock::FakeClock;
pub use recording::{RecordingCluster, Sent};
pub use redis::{FakeRedis, Job, Submitted};
pub use sim::{Op, Sim, SimConfig};
