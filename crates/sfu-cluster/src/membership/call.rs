//! A [`RedisCmd`] as a script call (`KEYS` and `ARGV`), and a script's answer as a [`Reply`].
//! The real Redis and `testing::FakeRedis` take the same calls and give the same values, so
//! both go through this one encoder and decoder.

use std::collections::BTreeMap;

use sfu_proto::RoomId;

use super::command::{
    BeatReply, JoinReply, LeaseMember, LeaveOutcome, NodeEntry, RedisCmd, Reply, RoomHolders, RoomSid,
};
use super::keys::{self, CLOCK, NODES, ROOMS};
use super::scripts::Script;
use super::value::ScriptValue;
use crate::NodeId;

/// A script run as sent: `EVALSHA sha #keys keys... args...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptCall {
    /// Which script.
    pub script: Script,
    /// Every key it touches that is known in advance (see `scripts` for the ones it derives).
    pub keys: Vec<String>,
    /// Its arguments.
    pub args: Vec<String>,
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_owned()
}

impl RedisCmd {
    /// The script call that carries out this command.
    pub fn to_call(&self) -> ScriptCall {
        match self {
            RedisCmd::Beat { lease, fields, rooms } => {
                let mut keys = vec![keys::node_key(&lease.node), NODES.into(), CLOCK.into(), ROOMS.into()];
                let mut args = vec![keys::escape(lease.node.as_str()), lease.to_string(), fields.len().to_string()];
                for (name, value) in fields {
                    args.extend([(*name).to_owned(), value.clone()]);
                }
                for room in rooms {
                    keys.extend([keys::room_key(&room.room), keys::leases_key(&room.room)]);
                    args.extend([keys::escape(room.room.as_str()), room.sid.0.clone(), flag(room.want_holders)]);
                }
                ScriptCall { script: Script::Beat, keys, args }
            }
            RedisCmd::Join { room, lease, sid } => ScriptCall {
                script: Script::Join,
                keys: vec![keys::room_key(room), keys::leases_key(room), ROOMS.into()],
                args: vec![keys::escape(room.as_str()), lease.to_string(), sid.0.clone()],
            },
            RedisCmd::Leave { room, lease, may_delete } => ScriptCall {
                script: Script::Leave,
                keys: vec![keys::room_key(room), keys::leases_key(room), ROOMS.into(), CLOCK.into()],
                args: vec![keys::escape(room.as_str()), lease.to_string(), flag(*may_delete)],
            },
            RedisCmd::Unregister { lease, rooms } => {
                let mut keys = vec![keys::node_key(&lease.node), NODES.into(), ROOMS.into(), CLOCK.into()];
                let mut args = vec![keys::escape(lease.node.as_str()), lease.to_string()];
                for (room, may_delete) in rooms {
                    keys.extend([keys::room_key(room), keys::leases_key(room)]);
                    args.extend([keys::escape(room.as_str()), flag(*may_delete)]);
                }
                ScriptCall { script: Script::Unregister, keys, args }
            }
        }
    }
}

/// A script answered with something its decoder does not expect (a script of another version,
/// or a bug): reported to the core as a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

type Decoded<T> = Result<T, DecodeError>;

fn bad<T>(what: &str, value: &ScriptValue) -> Decoded<T> {
    Err(DecodeError(format!("expected {what}, got {value:?}")))
}

fn list<'a>(value: &'a ScriptValue, what: &str) -> Decoded<&'a [ScriptValue]> {
    match value {
        ScriptValue::List(items) => Ok(items),
        other => bad(what, other),
    }
}

fn text<'a>(value: &'a ScriptValue, what: &str) -> Decoded<&'a str> {
    match value {
        ScriptValue::Text(s) => Ok(s),
        other => bad(what, other),
    }
}

fn int(value: &ScriptValue, what: &str) -> Decoded<i64> {
    match value {
        ScriptValue::Int(n) => Ok(*n),
        other => bad(what, other),
    }
}

fn fixed<'a, const N: usize>(value: &'a ScriptValue, what: &str) -> Decoded<&'a [ScriptValue; N]> {
    list(value, what)?.try_into().or_else(|_| bad(what, value))
}

fn holders(value: &ScriptValue) -> Decoded<Vec<LeaseMember>> {
    list(value, "lease members")?
        .iter()
        .map(|m| LeaseMember::parse(text(m, "lease member")?).ok_or_else(|| DecodeError(format!("lease {m:?}"))))
        .collect()
}

fn outcome(value: &ScriptValue) -> Decoded<LeaveOutcome> {
    let t = text(value, "leave outcome")?;
    LeaveOutcome::parse(t).ok_or_else(|| DecodeError(format!("leave outcome {t:?}")))
}

fn node_entry(value: &ScriptValue) -> Decoded<NodeEntry> {
    let [node, flat] = fixed(value, "node entry")?;
    let flat = list(flat, "node fields")?;
    let mut fields = BTreeMap::new();
    for pair in flat.chunks(2) {
        let [k, v] = pair else { return bad("field pairs", value) };
        fields.insert(text(k, "field")?.to_owned(), text(v, "value")?.to_owned());
    }
    Ok(NodeEntry { node: NodeId(keys::unescape(text(node, "node")?)), fields })
}

fn room_holders(value: &ScriptValue) -> Decoded<RoomHolders> {
    let [room, sid, members] = fixed(value, "room holders")?;
    Ok(RoomHolders {
        room: RoomId(keys::unescape(text(room, "room")?)),
        sid: RoomSid(text(sid, "sid")?.to_owned()),
        holders: holders(members)?,
    })
}

fn millis(value: &ScriptValue) -> Decoded<u64> {
    u64::try_from(int(value, "time")?).map_err(|_| DecodeError(format!("time {value:?}")))
}

impl Script {
    /// Reads this script's answer.
    pub fn decode(self, value: &ScriptValue) -> Decoded<Reply> {
        match self {
            Script::Beat => {
                let [now, existed, nodes, rooms] = fixed(value, "beat reply")?;
                Ok(Reply::Beat(BeatReply {
                    redis_ms: millis(now)?,
                    key_existed: int(existed, "existed")? == 1,
                    nodes: list(nodes, "nodes")?.iter().map(node_entry).collect::<Decoded<_>>()?,
                    rooms: list(rooms, "rooms")?.iter().map(room_holders).collect::<Decoded<_>>()?,
                }))
            }
            Script::Join => {
                let [sid, now, members] = fixed(value, "join reply")?;
                Ok(Reply::Join(JoinReply {
                    redis_ms: millis(now)?,
                    sid: RoomSid(text(sid, "sid")?.to_owned()),
                    holders: holders(members)?,
                }))
            }
            Script::Leave => Ok(Reply::Leave(outcome(value)?)),
            Script::Unregister => {
                Ok(Reply::Unregister(list(value, "outcomes")?.iter().map(outcome).collect::<Decoded<_>>()?))
            }
        }
    }
}
