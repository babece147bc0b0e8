//! **leave**, the compare-and-delete: end the own lease; delete the room record only if no
//! lease is live, the caller allows it (no linked peer holds the room), and beats have been
//! steady for a lease's life (after a pause or a flush every lease has lapsed by Redis's clock
//! while the nodes are alive: they rewrite their leases within a beat).
//!
//! KEYS: room record, lease set, `sfu:rooms`, `sfu:clock`.
//! ARGV: room (escaped), lease member, may_delete (`1`/`0`).
//! Returns `deleted`, `held`, `kept` or `deferred`.

use super::prelude;

/// The leave function, shared with **unregister**. The own lease is ended by scoring it in the
/// past, not removed: leases stay in the set for the orphan sweep's minute after they end, as
/// the record of when the room was last held. Removing it would leave a room whose other
/// holders were lost to a flush with no lease at all, which the sweep takes for an orphan,
/// while a linked peer (`kept`) still holds it. A lease that is not there (lost to a flush) is
/// not written: a lease set outside the room index would never be swept.
macro_rules! leave_fn {
    () => {
        r#"
local function leave(room_key, leases_key, rooms, clock, room, member, may_delete)
  if redis.call('ZSCORE', leases_key, member) then
    redis.call('ZADD', leases_key, now - 1, member)
  end
  redis.call('ZREMRANGEBYSCORE', leases_key, '-inf', '(' .. (now - ORPHAN))
  if redis.call('ZCOUNT', leases_key, now, '+inf') > 0 then return 'held' end
  if may_delete ~= '1' then return 'kept' end
  if not steady(clock) then return 'deferred' end
  redis.call('DEL', room_key, leases_key)
  redis.call('SREM', rooms, room)
  return 'deleted'
end
"#
    };
}
pub(crate) use leave_fn;

/// The script text.
pub const LUA: &str = concat!(
    prelude!(),
    leave_fn!(),
    r#"
return leave(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3])
"#
);

#[cfg(feature = "testing")]
pub(crate) use mirror::*;

#[cfg(feature = "testing")]
mod mirror {
    use super::super::Keyspace;
    use super::super::{ORPHAN, arg, steady};
    use crate::membership::value::ScriptValue;

    /// `leave(...)` of [`super::leave_fn`].
    #[allow(clippy::too_many_arguments)]
    pub fn leave(
        ks: &mut Keyspace,
        room_key: &str,
        leases_key: &str,
        rooms: &str,
        clock: &str,
        room: &str,
        member: &str,
        may_delete: &str,
    ) -> ScriptValue {
        let now = ks.time();
        if ks.zscore(leases_key, member).is_some() {
            ks.zadd(leases_key, now - 1, member);
        }
        ks.zremrangebyscore_below(leases_key, now - ORPHAN);
        let outcome = if ks.zcount_from(leases_key, now) > 0 {
            "held"
        } else if may_delete != "1" {
            "kept"
        } else if !steady(ks, clock) {
            "deferred"
        } else {
            ks.del(room_key);
            ks.del(leases_key);
            ks.srem(rooms, room);
            "deleted"
        };
        ScriptValue::Text(outcome.to_owned())
    }

    /// The script.
    pub fn run(ks: &mut Keyspace, keys: &[String], args: &[String]) -> ScriptValue {
        leave(ks, &keys[0], &keys[1], &keys[2], &keys[3], arg(args, 1), arg(args, 2), arg(args, 3))
    }
}
