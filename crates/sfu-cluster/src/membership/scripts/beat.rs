//! **beat**, every 2 s: the node key (`HSET`, `PEXPIRE`), its registry entry, a lease and the
//! record of every held room, the steady clock, and the orphan sweep. After a flush this one
//! script rebuilds everything the node owns.
//!
//! KEYS: node key, `sfu:nodes`, `sfu:clock`, `sfu:rooms`, then per room: record, lease set.
//! ARGV: node (escaped), lease member, field count n, n field/value pairs, then per room:
//! room (escaped), sid, want holders (`1`/`0`).
//! Returns `{now, node key existed (1/0), {{node, {field, value, ...}}...},
//! {{room, sid, {live lease members}}...}}`: live nodes, and the rooms asked for.

use super::prelude;

/// The script text.
pub const LUA: &str = concat!(
    prelude!(),
    r#"
local node_key, nodes, clock, rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, member, nfields = ARGV[1], ARGV[2], tonumber(ARGV[3])

local existed = redis.call('EXISTS', node_key)
redis.call('HSET', node_key, unpack(ARGV, 4, 3 + 2 * nfields))
redis.call('PEXPIRE', node_key, TTL)
redis.call('ZADD', nodes, now + TTL, node)
-- A member scored in the past has an expired key: it describes no live node.
redis.call('ZREMRANGEBYSCORE', nodes, '-inf', '(' .. now)

-- A gap between beats means Redis was not hearing them: leases may have lapsed on live nodes.
local last = tonumber(redis.call('HGET', clock, 'last_beat'))
if last == nil or now - last > GAP then
  redis.call('HSET', clock, 'steady_since', now)
end
redis.call('HSET', clock, 'last_beat', now)

local held = {}
local a = 4 + 2 * nfields
for i = 5, #KEYS, 2 do
  local room_key, leases_key = KEYS[i], KEYS[i + 1]
  local room, sid, want = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  a = a + 3
  redis.call('ZADD', leases_key, now + TTL, member)
  redis.call('ZREMRANGEBYSCORE', leases_key, '-inf', '(' .. (now - ORPHAN))
  if redis.call('HSETNX', room_key, 'sid', sid) == 1 then
    redis.call('HSET', room_key, 'created', now)
  end
  redis.call('SADD', rooms, room)
  if want == '1' then
    held[#held + 1] = {room, redis.call('HGET', room_key, 'sid'), redis.call('ZRANGEBYSCORE', leases_key, now, '+inf')}
  end
end

-- The orphan sweep: rooms whose newest lease expired over a minute ago (every holder died or
-- has been cut off that long), under the steady rule.
if steady(clock) then
  for _, room in ipairs(redis.call('SRANDMEMBER', rooms, SWEEP)) do
    local room_key = 'sfu:room:' .. room
    local leases_key = room_key .. ':leases'
    local newest = redis.call('ZRANGE', leases_key, -1, -1, 'WITHSCORES')
    if newest[2] == nil or now - tonumber(newest[2]) > ORPHAN then
      redis.call('DEL', room_key, leases_key)
      redis.call('SREM', rooms, room)
    end
  end
end

local live = {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', nodes, now, '+inf')) do
  local fields = redis.call('HGETALL', 'sfu:node:' .. n)
  if #fields > 0 then live[#live + 1] = {n, fields} end
end
return {now, existed, live, held}
"#
);

#[cfg(feature = "testing")]
pub(crate) use mirror::*;

#[cfg(feature = "testing")]
mod mirror {
    use super::super::Keyspace;
    use super::super::{GAP, ORPHAN, SWEEP, TTL, arg, steady};
    use crate::membership::value::ScriptValue;

    /// The script.
    pub fn run(ks: &mut Keyspace, keys: &[String], args: &[String]) -> ScriptValue {
        let now = ks.time();
        let (node_key, nodes, clock, rooms) = (&keys[0], &keys[1], &keys[2], &keys[3]);
        let (node, member) = (arg(args, 1), arg(args, 2));
        let nfields: usize = arg(args, 3).parse().unwrap_or(0);

        let existed = ks.exists(node_key);
        let pairs: Vec<(String, String)> =
            args[3..3 + 2 * nfields].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        ks.hset(node_key, &pairs);
        ks.pexpire(node_key, TTL);
        ks.zadd(nodes, now + TTL, node);
        ks.zremrangebyscore_below(nodes, now);

        let last = ks.hget(clock, "last_beat").and_then(|v| v.parse::<i64>().ok());
        if last.is_none_or(|last| now - last > GAP) {
            ks.hset(clock, &[("steady_since".into(), now.to_string())]);
        }
        ks.hset(clock, &[("last_beat".into(), now.to_string())]);

        let mut held = Vec::new();
        let mut a = 4 + 2 * nfields;
        for pair in keys[4..].chunks(2) {
            let (room_key, leases_key) = (&pair[0], &pair[1]);
            let (room, sid, want) = (arg(args, a), arg(args, a + 1), arg(args, a + 2));
            a += 3;
            ks.zadd(leases_key, now + TTL, member);
            ks.zremrangebyscore_below(leases_key, now - ORPHAN);
            if ks.hsetnx(room_key, "sid", sid) {
                ks.hset(room_key, &[("created".into(), now.to_string())]);
            }
            ks.sadd(rooms, room);
            if want == "1" {
                let sid = ks.hget(room_key, "sid").map_or(ScriptValue::Nil, ScriptValue::Text);
                let members = ks.zrangebyscore_from(leases_key, now).into_iter().map(ScriptValue::Text).collect();
                held.push(ScriptValue::List(vec![ScriptValue::Text(room.to_owned()), sid, ScriptValue::List(members)]));
            }
        }

        if steady(ks, clock) {
            for room in ks.srandmember(rooms, SWEEP) {
                let room_key = format!("sfu:room:{room}");
                let leases_key = format!("{room_key}:leases");
                let newest = ks.zrange_last_score(&leases_key);
                if newest.is_none_or(|newest| now - newest > ORPHAN) {
                    ks.del(&room_key);
                    ks.del(&leases_key);
                    ks.srem(rooms, &room);
                }
            }
        }

        let mut live = Vec::new();
        for n in ks.zrangebyscore_from(nodes, now) {
            let fields = ks.hgetall(&format!("sfu:node:{n}"));
            if !fields.is_empty() {
                let flat = fields.into_iter().flat_map(|(k, v)| [ScriptValue::Text(k), ScriptValue::Text(v)]);
                live.push(ScriptValue::List(vec![ScriptValue::Text(n), ScriptValue::List(flat.collect())]));
            }
        }
        ScriptValue::List(vec![
            ScriptValue::Int(now),
            ScriptValue::Int(i64::from(existed)),
            ScriptValue::List(live),
            ScriptValue::List(held),
        ])
    }
}
