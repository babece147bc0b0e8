//! Redis key names and the times the scripts judge by (docs/cluster.md, "Redis key schema").
//!
//! The Lua scripts carry the same numbers as literals; `scripts::tests` checks they agree.

use std::time::Duration;

use sfu_proto::RoomId;

use crate::NodeId;

/// How often a node writes its key and leases.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(2);
/// How soon a beat that found the connection down is sent again.
pub const BEAT_RETRY: Duration = Duration::from_millis(250);
/// Life of a node key and of a room lease after each write: three beats, so one lost beat
/// (or two) does not make a live node look dead.
pub const TTL_MS: u64 = 6000;
/// A gap between beats (any node's) longer than this means Redis was not hearing beats
/// (paused, restarted, unreachable), so leases may have lapsed on live nodes: the steady clock
/// restarts. A little over one beat interval, for a beat delayed by a busy Redis.
pub const BEAT_GAP_MS: u64 = 2500;
/// How long beats must have been heard without a gap before a record may be deleted: one
/// lease life, so every live holder has rewritten its lease by then.
pub const STEADY_MS: u64 = TTL_MS;
/// A room whose newest lease expired this long ago has no holder that will come back soon:
/// the orphan sweep deletes it. Leases are kept this long after they expire (they are
/// evidence of when the room was last held).
pub const ORPHAN_MS: u64 = 60_000;
/// Rooms of the index the orphan sweep looks at per beat.
pub const SWEEP_ROOMS: usize = 16;

/// The registry: a sorted set of node ids scored by their key's expiry.
pub const NODES: &str = "sfu:nodes";
/// The admin index of room names (as escaped in key names).
pub const ROOMS: &str = "sfu:rooms";
/// `last_beat` and `steady_since`, the clock of the steady rule.
pub const CLOCK: &str = "sfu:clock";

/// A node's hash: its record, state and load.
pub fn node_key(node: &NodeId) -> String {
    format!("sfu:node:{}", escape(node.as_str()))
}

/// A room's record: `sid` and `created`.
pub fn room_key(room: &RoomId) -> String {
    format!("sfu:room:{}", escape(room.as_str()))
}

/// A room's leases: members `{node}/{boot}` scored by their expiry.
pub fn leases_key(room: &RoomId) -> String {
    format!("sfu:room:{}:leases", escape(room.as_str()))
}

/// A name as it appears in keys and in `sfu:nodes` / `sfu:rooms`. Room names are chosen by
/// token minters: without this a room called `x:leases` would own the key of room `x`'s leases.
/// `%` and `:` are percent-encoded; the orphan sweep builds keys from index members as they are.
pub fn escape(name: &str) -> String {
    name.replace('%', "%25").replace(':', "%3A")
}

/// The inverse of [`escape`].
pub fn unescape(name: &str) -> String {
    name.replace("%3A", ":").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_name_cannot_reach_another_rooms_lease_set() {
        let x = RoomId::from("x");
        let sneaky = RoomId::from("x:leases");
        assert_ne!(room_key(&sneaky), leases_key(&x));
        for name in ["x:leases", "a%3Ab", "%", "plain"] {
            assert_eq!(unescape(&escape(name)), name);
        }
    }
}
