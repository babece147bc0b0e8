//! **join**: take a lease on a room, creating its record unless one exists (the first sid
//! wins), and say who else holds it.
//!
//! KEYS: room record, lease set, `sfu:rooms`.
//! ARGV: room (escaped), lease member, proposed sid.
//! Returns `{sid, now, live lease members}`.

use super::prelude;

/// The script text.
pub const LUA: &str = concat!(
    prelude!(),
    r#"
local room_key, leases_key, rooms = KEYS[1], KEYS[2], KEYS[3]
local room, member, sid = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HSETNX', room_key, 'sid', sid) == 1 then
  redis.call('HSET', room_key, 'created', now)
end
redis.call('ZADD', leases_key, now + TTL, member)
redis.call('SADD', rooms, room)
return {redis.call('HGET', room_key, 'sid'), now, redis.call('ZRANGEBYSCORE', leases_key, now, '+inf')}
"#
);

#[cfg(feature = "testing")]
pub(crate) use mirror::*;

#[cfg(feature = "testing")]
mod mirror {
    use super::super::Keyspace;
    use super::super::{TTL, arg};
    use crate::membership::value::ScriptValue;

    /// The script.
    pub fn run(ks: &mut Keyspace, keys: &[String], args: &[String]) -> ScriptValue {
        let now = ks.time();
        let (room_key, leases_key, rooms) = (&keys[0], &keys[1], &keys[2]);
        let (room, member, sid) = (arg(args, 1), arg(args, 2), arg(args, 3));
        if ks.hsetnx(room_key, "sid", sid) {
            ks.hset(room_key, &[("created".into(), now.to_string())]);
        }
        ks.zadd(leases_key, now + TTL, member);
        ks.sadd(rooms, room);
        let sid = ks.hget(room_key, "sid").map_or(ScriptValue::Nil, ScriptValue::Text);
        let members = ks.zrangebyscore_from(leases_key, now).into_iter().map(ScriptValue::Text).collect();
        ScriptValue::List(vec![sid, ScriptValue::Int(now), ScriptValue::List(members)])
    }
}
