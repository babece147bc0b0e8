//! Who a node is and what it reports about itself.

pub use sfu_proto::{BootId, NodeId};

/// Whether a node takes new participants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeState {
    /// Takes new participants.
    #[default]
    Serving,
    /// Shutting down: serves its sessions, sends new ones elsewhere.
    Draining,
}

impl NodeState {
    /// The value of the node key's `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Serving => "serving",
            NodeState::Draining => "draining",
        }
    }

    /// Reads a `state` field; `None` for anything this build does not know.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "serving" => Some(NodeState::Serving),
            "draining" => Some(NodeState::Draining),
            _ => None,
        }
    }
}

/// How busy a node is, written at each heartbeat so others can pick the least loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeLoad {
    /// Mean share of time the shards spent outside their wait over the last 2 s (0..=1).
    pub busy: f32,
    /// Packets forwarded per second.
    pub forwarded_pps: u64,
    /// Local participants.
    pub participants: u32,
    /// Rooms with local participants.
    pub rooms: u32,
    /// How many participants it takes (`limits.participants_per_node`); 0: not said.
    pub capacity: u32,
}

/// Whether the cluster's coordinator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Single-node mode: there is no coordinator.
    Local,
    /// The last Redis command succeeded.
    Healthy,
    /// The last Redis command failed, or none has succeeded yet. Rooms go on regardless.
    Degraded,
}

/// What a node announces about itself, fixed for its boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its name.
    pub node: NodeId,
    /// This run of it.
    pub boot: BootId,
    /// Where redirected clients are sent.
    pub signal_url: String,
    /// TCP address of its control connection.
    pub relay_addr: String,
    /// Its region, if configured; others prefer nodes of their own.
    pub region: Option<String>,
}
