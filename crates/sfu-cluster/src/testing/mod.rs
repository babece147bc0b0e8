//! A virtual-time test bench for the membership core: [`FakeRedis`] (the scripts mirrored in
//! Rust on an in-memory keyspace), [`FakeClock`] (Redis's time, skewed from the nodes'), and
//! [`Sim`] (several cores, their local participants, a mesh reachability matrix, and the
//! invariants of docs/cluster.md checked after every step). For tests against the real thing:
//! [`RedisServer`] (a `redis-server` child process) and [`RealRedis`] (script calls sent the
//! way the supervisor sends them).

mod clock;
mod real;
mod recording;
mod redis;
mod server;
mod sim;

pub use crate::membership::scripts::{Keyspace, RoomDeletion};
pub use clock::FakeClock;
pub use real::RealRedis;
pub use recording::{RecordingCluster, Sent};
pub use redis::{FakeRedis, Job, Submitted};
pub use server::{RedisServer, free_port};
pub use sim::{Op, Sim, SimConfig};
