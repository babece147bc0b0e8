//! FakeRedis's data: keys with expiries, and the handful of Redis commands the scripts call,
//! with Redis's semantics (lazy expiry: a key is gone once `now > expiry`; an emptied hash, set
//! or sorted set is deleted; sorted-set ranges ordered by score, then member).
//!
//! Every write is checked against the incarnation that sent the script (invariant 2 of
//! docs/cluster.md: a node writes only its own node key and leases; others' entries go only
//! once Redis's clock says they expired), and room deletions are logged for invariant 1.

use std::collections::{BTreeMap, BTreeSet};

use crate::membership::{LeaseMember, keys};

enum Value {
    Hash(BTreeMap<String, String>),
    ZSet(BTreeMap<String, i64>),
    Set(BTreeSet<String>),
}

struct Entry {
    value: Value,
    /// Redis milliseconds; the key is gone once the clock passes it.
    expires_at: Option<i64>,
}

/// A room record deleted by a script: the moment invariant 1 is judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomDeletion {
    /// The room as escaped in key names.
    pub room: String,
    /// Redis's time of the deletion.
    pub at_ms: i64,
    /// The incarnation whose script deleted it.
    pub by: LeaseMember,
}

/// The keyspace and the context of the script running on it.
#[derive(Default)]
pub struct Keyspace {
    entries: BTreeMap<String, Entry>,
    now: i64,
    writer: Option<LeaseMember>,
    /// Room records deleted, in order.
    pub deletions: Vec<RoomDeletion>,
    /// Live leases written (not ones ended by a leave): (escaped room, member, Redis time).
    pub lease_writes: Vec<(String, LeaseMember, i64)>,
    /// Writes that broke invariant 2.
    pub violations: Vec<String>,
}

/// What kind of key a name is, by the schema.
enum Kind<'a> {
    Node,
    Nodes,
    Leases(&'a str),
    Room(&'a str),
    Other,
}

fn kind(key: &str) -> Kind<'_> {
    if key == keys::NODES {
        return Kind::Nodes;
    }
    if key.starts_with("sfu:node:") {
        return Kind::Node;
    }
    match key.strip_prefix("sfu:room:") {
        Some(rest) => match rest.strip_suffix(":leases") {
            Some(room) => Kind::Leases(room),
            None => Kind::Room(rest),
        },
        None => Kind::Other,
    }
}

impl Keyspace {
    /// Starts a script run by `writer` at Redis time `now_ms`.
    pub fn begin(&mut self, writer: LeaseMember, now_ms: i64) {
        self.writer = Some(writer);
        self.now = now_ms;
    }

    /// Empties the keyspace, as `FLUSHALL` or a restart without persistence.
    pub fn flush(&mut self) {
        self.entries.clear();
    }

    fn writer(&self) -> &LeaseMember {
        self.writer.as_ref().expect("scripts run between begin() calls")
    }

    fn violation(&mut self, what: String) {
        let by = self.writer().clone();
        self.violations.push(format!("{by} at {}: {what}", self.now));
    }

    /// A write of `member` (or of the whole key when `None`) to `key` by the current writer.
    fn check_write(&mut self, key: &str, member: Option<&str>) {
        let me = self.writer().clone();
        match (kind(key), member) {
            (Kind::Node, _) if key != keys::node_key(&me.node) => self.violation(format!("wrote {key}")),
            (Kind::Nodes, Some(m)) if m != keys::escape(me.node.as_str()) => {
                self.violation(format!("wrote {m} in {key}"))
            }
            (Kind::Leases(_), Some(m)) if m != me.to_string() => self.violation(format!("wrote lease {m} in {key}")),
            _ => {}
        }
    }

    /// The value at `key` unless it has expired (then it is removed, as Redis does on access).
    fn live(&mut self, key: &str) -> Option<&mut Value> {
        let now = self.now;
        if self.entries.get(key).is_some_and(|e| e.expires_at.is_some_and(|at| now > at)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.entries.get(key).map(|e| &e.value) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            Some(Value::Set(s)) => s.is_empty(),
            None => false,
        };
        if empty {
            self.entries.remove(key);
        }
    }

    fn hash(&mut self, key: &str) -> &mut BTreeMap<String, String> {
        if self.live(key).is_none() {
            self.entries.insert(key.to_owned(), Entry { value: Value::Hash(BTreeMap::new()), expires_at: None });
        }
        match self.live(key) {
            Some(Value::Hash(h)) => h,
            _ => panic!("WRONGTYPE {key}: not a hash"),
        }
    }

    fn zset(&mut self, key: &str) -> &mut BTreeMap<String, i64> {
        if self.live(key).is_none() {
            self.entries.insert(key.to_owned(), Entry { value: Value::ZSet(BTreeMap::new()), expires_at: None });
        }
        match self.live(key) {
            Some(Value::ZSet(z)) => z,
            _ => panic!("WRONGTYPE {key}: not a sorted set"),
        }
    }

    fn set(&mut self, key: &str) -> &mut BTreeSet<String> {
        if self.live(key).is_none() {
            self.entries.insert(key.to_owned(), Entry { value: Value::Set(BTreeSet::new()), expires_at: None });
        }
        match self.live(key) {
            Some(Value::Set(s)) => s,
            _ => panic!("WRONGTYPE {key}: not a set"),
        }
    }

    /// `TIME`, in milliseconds.
    pub fn time(&self) -> i64 {
        self.now
    }

    /// `EXISTS key`.
    pub fn exists(&mut self, key: &str) -> bool {
        self.live(key).is_some()
    }

    /// `DEL key`. A lease set may go only when none of its leases is live; a room record's
    /// deletion is logged.
    pub fn del(&mut self, key: &str) {
        self.check_write(key, None);
        let now = self.now;
        match kind(key) {
            Kind::Leases(_) => {
                if let Some(Value::ZSet(z)) = self.live(key)
                    && let Some((m, _)) = z.iter().find(|(_, at)| **at >= now)
                {
                    let m = m.clone();
                    self.violation(format!("deleted {key} with live lease {m}"));
                }
            }
            Kind::Room(room) if self.live(key).is_some() => {
                let deletion = RoomDeletion { room: room.to_owned(), at_ms: now, by: self.writer().clone() };
                self.deletions.push(deletion);
            }
            _ => {}
        }
        self.entries.remove(key);
    }

    /// `HSET key field value ...`.
    pub fn hset(&mut self, key: &str, pairs: &[(String, String)]) {
        self.check_write(key, None);
        self.hash(key).extend(pairs.iter().cloned());
    }

    /// `HSETNX key field value`: true when it was set.
    pub fn hsetnx(&mut self, key: &str, field: &str, value: &str) -> bool {
        self.check_write(key, None);
        let hash = self.hash(key);
        if hash.contains_key(field) {
            return false;
        }
        hash.insert(field.to_owned(), value.to_owned());
        true
    }

    /// `HGET key field`.
    pub fn hget(&mut self, key: &str, field: &str) -> Option<String> {
        match self.live(key) {
            Some(Value::Hash(h)) => h.get(field).cloned(),
            _ => None,
        }
    }

    /// `HGETALL key`, as (field, value) pairs.
    pub fn hgetall(&mut self, key: &str) -> Vec<(String, String)> {
        match self.live(key) {
            Some(Value::Hash(h)) => h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Vec::new(),
        }
    }

    /// `PEXPIRE key ms`.
    pub fn pexpire(&mut self, key: &str, ms: i64) {
        self.check_write(key, None);
        let at = self.now + ms;
        if self.live(key).is_some()
            && let Some(entry) = self.entries.get_mut(key)
        {
            entry.expires_at = Some(at);
        }
    }

    /// `ZADD key score member`.
    pub fn zadd(&mut self, key: &str, score: i64, member: &str) {
        self.check_write(key, Some(member));
        if let (Kind::Leases(room), Some(me)) = (kind(key), self.writer.clone())
            && score >= self.now
        {
            self.lease_writes.push((room.to_owned(), me, self.now));
        }
        self.zset(key).insert(member.to_owned(), score);
    }

    /// `ZSCORE key member`.
    pub fn zscore(&mut self, key: &str, member: &str) -> Option<i64> {
        match self.live(key) {
            Some(Value::ZSet(z)) => z.get(member).copied(),
            _ => None,
        }
    }

    /// `ZREM key member`.
    pub fn zrem(&mut self, key: &str, member: &str) {
        self.check_write(key, Some(member));
        if let Some(Value::ZSet(z)) = self.live(key) {
            z.remove(member);
        }
        self.drop_if_empty(key);
    }

    /// `ZREMRANGEBYSCORE key -inf (bound`: members scored below `bound`. Pruning others'
    /// entries is allowed only for ones past by Redis's clock.
    pub fn zremrangebyscore_below(&mut self, key: &str, bound: i64) {
        if bound > self.now {
            self.violation(format!("pruned {key} below {bound}, a time not yet past"));
        }
        if let Some(Value::ZSet(z)) = self.live(key) {
            z.retain(|_, score| *score >= bound);
        }
        self.drop_if_empty(key);
    }

    fn zsorted(&mut self, key: &str) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = match self.live(key) {
            Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m.clone(), *s)).collect(),
            _ => Vec::new(),
        };
        all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        all
    }

    /// `ZRANGEBYSCORE key min +inf`: members scored `min` or more, in order.
    pub fn zrangebyscore_from(&mut self, key: &str, min: i64) -> Vec<String> {
        self.zsorted(key).into_iter().filter(|(_, s)| *s >= min).map(|(m, _)| m).collect()
    }

    /// `ZCOUNT key min +inf`.
    pub fn zcount_from(&mut self, key: &str, min: i64) -> usize {
        self.zrangebyscore_from(key, min).len()
    }

    /// `ZRANGE key -1 -1 WITHSCORES`: the highest score.
    pub fn zrange_last_score(&mut self, key: &str) -> Option<i64> {
        self.zsorted(key).last().map(|(_, s)| *s)
    }

    /// `SADD key member`.
    pub fn sadd(&mut self, key: &str, member: &str) {
        self.set(key).insert(member.to_owned());
    }

    /// `SREM key member`.
    pub fn srem(&mut self, key: &str, member: &str) {
        if let Some(Value::Set(s)) = self.live(key) {
            s.remove(member);
        }
        self.drop_if_empty(key);
    }

    /// `SRANDMEMBER key count`. Redis picks at random; the fake takes the first `count` in
    /// order. The two agree whenever the set has at most `count` members (the contract test's
    /// case): then Redis returns them all.
    pub fn srandmember(&mut self, key: &str, count: usize) -> Vec<String> {
        match self.live(key) {
            Some(Value::Set(s)) => s.iter().take(count).cloned().collect(),
            _ => Vec::new(),
        }
    }

    // Read-only views for the Sim's checks (no expiry side effects, judged at `now_ms`).

    /// The hash at `key` if live at `now_ms`.
    pub fn peek_hash(&self, key: &str, now_ms: i64) -> Option<&BTreeMap<String, String>> {
        match self.entries.get(key) {
            Some(Entry { value: Value::Hash(h), expires_at }) if expires_at.is_none_or(|at| now_ms <= at) => Some(h),
            _ => None,
        }
    }

    /// Every key live at `now_ms`, in order (what `KEYS *` lists, sorted).
    pub fn live_keys(&self, now_ms: i64) -> Vec<String> {
        let live = self.entries.iter().filter(|(_, e)| e.expires_at.is_none_or(|at| now_ms <= at));
        live.map(|(key, _)| key.clone()).collect()
    }

    /// The sorted set at `key`, whatever its scores.
    pub fn peek_zset(&self, key: &str) -> Option<&BTreeMap<String, i64>> {
        match self.entries.get(key) {
            Some(Entry { value: Value::ZSet(z), .. }) => Some(z),
            _ => None,
        }
    }

    /// The set at `key`.
    pub fn peek_set(&self, key: &str) -> Option<&BTreeSet<String>> {
        match self.entries.get(key) {
            Some(Entry { value: Value::Set(s), .. }) => Some(s),
            _ => None,
        }
    }

    /// Every lease set: (escaped room, its members and scores).
    pub fn lease_sets(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, i64>)> {
        self.entries.iter().filter_map(|(key, entry)| match (kind(key), &entry.value) {
            (Kind::Leases(room), Value::ZSet(z)) => Some((room, z)),
            _ => None,
        })
    }
}
