//! Helpers of the tests against a real redis-server: node records, polling with a bound, and
//! reading what is in Redis.

#![allow(dead_code)] // each test binary uses its own share of these

pub mod proxy;

use std::time::{Duration, Instant};

use sfu_cluster::membership::{LeaseMember, MembershipEvent, ScriptValue, keys};
use sfu_cluster::testing::RealRedis;
use sfu_cluster::{BootId, Health, NodeId, NodeRecord, RedisCluster};
use sfu_proto::RoomId;
use tokio::sync::mpsc;

pub fn record(name: &str) -> NodeRecord {
    NodeRecord {
        node: NodeId(format!("ND_{name}")),
        boot: BootId(format!("BT{name}")),
        signal_url: format!("http://{name}.test:7880"),
        relay_addr: format!("{name}.test:7882"),
        region: None,
    }
}

pub fn member(name: &str) -> LeaseMember {
    let r = record(name);
    LeaseMember { node: r.node, boot: r.boot }
}

pub fn room(name: &str) -> RoomId {
    RoomId::from(name)
}

/// Polls a condition (which may `.await`) every 50 ms until it holds; panics after `within`.
macro_rules! until {
    ($within:expr, $what:expr, $cond:expr) => {{
        let within: std::time::Duration = $within;
        let deadline = std::time::Instant::now() + within;
        loop {
            if $cond {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not within {within:?}: {}", $what);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// Polls `check` every 50 ms until it gives a value; panics after `within`.
pub async fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every handle has had Redis answer.
pub async fn healthy(nodes: &[&RedisCluster], within: Duration) {
    eventually(within, "Redis healthy", || nodes.iter().all(|n| n.health() == Health::Healthy).then_some(())).await;
}

/// Whether `node`'s list of other live nodes names `other`.
pub fn sees(node: &RedisCluster, other: &str) -> bool {
    node.nodes().iter().any(|n| n.node.0 == format!("ND_{other}"))
}

/// Every event received so far.
pub fn drain(events: &mut mpsc::Receiver<MembershipEvent>, into: &mut Vec<MembershipEvent>) {
    while let Ok(event) = events.try_recv() {
        into.push(event);
    }
}

/// What is in a real Redis, read over its own connection.
pub struct Peek(pub RealRedis);

impl Peek {
    pub async fn connect(url: &str) -> Self {
        Self(RealRedis::connect(url).await.expect("redis-server answers"))
    }

    async fn get(&mut self, args: &[&str]) -> ScriptValue {
        self.0.command(args).await.unwrap_or_else(|e| panic!("{args:?}: {e:?}"))
    }

    pub async fn node_key(&mut self, name: &str) -> bool {
        let key = keys::node_key(&NodeId(format!("ND_{name}")));
        self.get(&["EXISTS", &key]).await == ScriptValue::Int(1)
    }

    /// The room record's sid, if the record exists.
    pub async fn sid(&mut self, room: &str) -> Option<String> {
        match self.get(&["HGET", &keys::room_key(&RoomId::from(room)), "sid"]).await {
            ScriptValue::Text(sid) => Some(sid),
            _ => None,
        }
    }

    /// Lease members of a room that are live by Redis's clock.
    pub async fn live_leases(&mut self, room: &str) -> Vec<String> {
        let (secs, micros) = match self.get(&["TIME"]).await {
            ScriptValue::List(t) => match t.as_slice() {
                [ScriptValue::Text(s), ScriptValue::Text(u)] => (s.parse::<i64>().unwrap(), u.parse::<i64>().unwrap()),
                other => panic!("TIME: {other:?}"),
            },
            other => panic!("TIME: {other:?}"),
        };
        let now = (secs * 1000 + micros / 1000).to_string();
        match self.get(&["ZRANGEBYSCORE", &keys::leases_key(&RoomId::from(room)), &now, "+inf"]).await {
            ScriptValue::List(members) => members
                .into_iter()
                .map(|m| match m {
                    ScriptValue::Text(m) => m,
                    other => panic!("member {other:?}"),
                })
                .collect(),
            other => panic!("ZRANGEBYSCORE: {other:?}"),
        }
    }

    /// Whether the admin index lists the room.
    pub async fn indexed(&mut self, room: &str) -> bool {
        self.get(&["SISMEMBER", keys::ROOMS, &keys::escape(room)]).await == ScriptValue::Int(1)
    }

    pub async fn run(&mut self, args: &[&str]) {
        self.get(args).await;
    }
}
