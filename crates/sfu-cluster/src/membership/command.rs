//! What the core asks of Redis and what comes back, in our own types: the supervisor maps each
//! [`RedisCmd`] to its script call (`call.rs`) and the script's answer back to a [`Reply`].

use std::collections::BTreeMap;
use std::fmt;

use sfu_proto::RoomId;

use crate::{BootId, NodeId, NodeState};

/// Names one command from [`super::Membership::poll_command`] to its [`Reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CmdId(pub u64);

/// A room record's id (`RM_…`), the same on every node holding the room.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomSid(pub String);

/// One incarnation's lease on a room: `{node}/{boot}` in the room's lease set. Keyed by boot
/// so a restarted node never refreshes, or removes, its previous run's lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseMember {
    /// The holder.
    pub node: NodeId,
    /// The holder's run.
    pub boot: BootId,
}

impl fmt::Display for LeaseMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.boot)
    }
}

impl LeaseMember {
    /// Reads a member as written by [`fmt::Display`]. Boot ids hold no `/`, so the last one splits.
    pub fn parse(text: &str) -> Option<Self> {
        let (node, boot) = text.rsplit_once('/')?;
        Some(Self { node: NodeId(node.to_owned()), boot: BootId(boot.to_owned()) })
    }
}

/// A Redis command of the membership core: one script run each.
#[derive(Clone, Debug, PartialEq)]
pub enum RedisCmd {
    /// The heartbeat: the node key, its registry entry, a lease and the record of every held
    /// room, the steady clock, and the orphan sweep.
    Beat {
        /// The sender.
        lease: LeaseMember,
        /// The node key's fields (`boot`, `state`, load, ...).
        fields: Vec<(&'static str, String)>,
        /// Every room the node holds.
        rooms: Vec<BeatRoom>,
    },
    /// Take a lease on a room, creating its record with `sid` unless one exists.
    Join {
        /// The room.
        room: RoomId,
        /// The sender.
        lease: LeaseMember,
        /// The sid to create the record with; the record's own wins if it exists.
        sid: RoomSid,
    },
    /// End the sender's lease; delete the record if no lease is live, `may_delete`, and the
    /// steady rule allows.
    Leave {
        /// The room.
        room: RoomId,
        /// The sender.
        lease: LeaseMember,
        /// False while a linked peer says it holds the room (its lease may have lapsed).
        may_delete: bool,
    },
    /// End of drain: remove the node key and registry entry, and leave each room.
    Unregister {
        /// The sender.
        lease: LeaseMember,
        /// The rooms still held or being left, each with its `may_delete`.
        rooms: Vec<(RoomId, bool)>,
    },
}

impl RedisCmd {
    /// The incarnation the command writes for.
    pub fn sender(&self) -> &LeaseMember {
        match self {
            RedisCmd::Beat { lease, .. }
            | RedisCmd::Join { lease, .. }
            | RedisCmd::Leave { lease, .. }
            | RedisCmd::Unregister { lease, .. } => lease,
        }
    }
}

/// A held room as a beat writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeatRoom {
    /// The room.
    pub room: RoomId,
    /// The sid the node knows, written only if the record is missing (lost to a flush).
    pub sid: RoomSid,
    /// Return the room's sid and live leases (rooms joined unverified, and all every fifth beat).
    pub want_holders: bool,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// To [`RedisCmd::Beat`].
    Beat(BeatReply),
    /// To [`RedisCmd::Join`].
    Join(JoinReply),
    /// To [`RedisCmd::Leave`].
    Leave(LeaveOutcome),
    /// To [`RedisCmd::Unregister`]: one outcome per room, in the command's order.
    Unregister(Vec<LeaveOutcome>),
}

/// What a beat saw.
#[derive(Clone, Debug, PartialEq)]
pub struct BeatReply {
    /// Redis's `TIME` in milliseconds.
    pub redis_ms: u64,
    /// The node key existed before this beat; false after the first means the registry was lost.
    pub key_existed: bool,
    /// Every live node key (this node's too).
    pub nodes: Vec<NodeEntry>,
    /// The rooms asked for with `want_holders`.
    pub rooms: Vec<RoomHolders>,
}

/// A live node key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// Whose key.
    pub node: NodeId,
    /// Its fields as stored.
    pub fields: BTreeMap<String, String>,
}

impl NodeEntry {
    /// The run that wrote the key.
    pub fn boot(&self) -> Option<BootId> {
        self.fields.get("boot").map(|b| BootId(b.clone()))
    }

    /// Serving or draining; `None` if unreadable.
    pub fn state(&self) -> Option<NodeState> {
        self.fields.get("state").and_then(|s| NodeState::parse(s))
    }
}

/// A room's record id and live leases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomHolders {
    /// The room.
    pub room: RoomId,
    /// The record's sid.
    pub sid: RoomSid,
    /// Live leases, the asker's own included.
    pub holders: Vec<LeaseMember>,
}

/// What a join saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinReply {
    /// Redis's `TIME` in milliseconds.
    pub redis_ms: u64,
    /// The record's sid (the proposed one if this join created it).
    pub sid: RoomSid,
    /// Live leases, the joiner's own included.
    pub holders: Vec<LeaseMember>,
}

/// What a leave did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// No lease was left: the record, lease set and index entry are gone.
    Deleted,
    /// Other live leases remain: the room lives on elsewhere.
    Held,
    /// No live lease, but a linked peer holds the room: only the own lease was ended.
    Kept,
    /// No live lease, but beats were not heard steadily for long enough: leases may have
    /// lapsed on live nodes. The record stays (the orphan sweep deletes it if nobody comes back).
    Deferred,
}

impl LeaveOutcome {
    /// As the scripts return it.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveOutcome::Deleted => "deleted",
            LeaveOutcome::Held => "held",
            LeaveOutcome::Kept => "kept",
            LeaveOutcome::Deferred => "deferred",
        }
    }

    /// Reads a script's answer.
    pub fn parse(text: &str) -> Option<Self> {
        [LeaveOutcome::Deleted, LeaveOutcome::Held, LeaveOutcome::Kept, LeaveOutcome::Deferred]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// Why a command got no answer. The command may or may not have run: every command is
/// idempotent, so the core simply sends it again later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisFailure {
    /// No answer within the response timeout (Redis paused, overloaded, or a lost connection
    /// not yet noticed).
    Timeout,
    /// The connection is down and not yet re-established.
    Disconnected,
    /// Redis answered with an error, or an answer the decoder does not understand.
    Error(String),
}
