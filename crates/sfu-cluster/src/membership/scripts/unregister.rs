//! **unregister**, at the end of a drain: the node key and registry entry go at once (not at
//! their expiry), and each room is left as by **leave**.
//!
//! KEYS: node key, `sfu:nodes`, `sfu:rooms`, `sfu:clock`, then per room: record, lease set.
//! ARGV: node (escaped), lease member, then per room: room (escaped), may_delete (`1`/`0`).
//! Returns the leave outcome of each room, in order.

use super::leave::leave_fn;
use super::prelude;

/// The script text.
pub const LUA: &str = concat!(
    prelude!(),
    leave_fn!(),
    r#"
local node_key, nodes, rooms, clock = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, member = ARGV[1], ARGV[2]
redis.call('DEL', node_key)
redis.call('ZREM', nodes, node)
local outcomes = {}
local a = 3
for i = 5, #KEYS, 2 do
  outcomes[#outcomes + 1] = leave(KEYS[i], KEYS[i + 1], rooms, clock, ARGV[a], member, ARGV[a + 1])
  a = a + 2
end
return outcomes
"#
);

#[cfg(feature = "testing")]
pub(crate) use mirror::*;

#[cfg(feature = "testing")]
mod mirror {
    use super::super::Keyspace;
    use super::super::arg;
    use super::super::leave::leave;
    use crate::membership::value::ScriptValue;

    /// The script.
    pub fn run(ks: &mut Keyspace, keys: &[String], args: &[String]) -> ScriptValue {
        let (node_key, nodes, rooms, clock) = (&keys[0], &keys[1], &keys[2], &keys[3]);
        let (node, member) = (arg(args, 1), arg(args, 2));
        ks.del(node_key);
        ks.zrem(nodes, node);
        let mut outcomes = Vec::new();
        let mut a = 3;
        for pair in keys[4..].chunks(2) {
            outcomes.push(leave(ks, &pair[0], &pair[1], rooms, clock, arg(args, a), member, arg(args, a + 1)));
            a += 2;
        }
        ScriptValue::List(outcomes)
    }
}
