//! The contract test: one scenario of script calls (joins, beats, leaves, a flush, an
//! unregister, over three nodes) run step by step against `testing::FakeRedis` and a real
//! redis-server, through the same encoder and decoder. The decoded replies must be equal, and
//! so must the keys in each after every step: this keeps the scripts' Rust mirrors from
//! drifting from their Lua.
//!
//! Times differ: the fake runs a beat or a join at the time the real script reported, any other
//! step at the real Redis's `TIME` read just before it; stored times are compared to within 1 s
//! (a wrong TTL or score is far off that). The scenario runs on an absolute schedule with beats
//! 1.5 s apart, so a busy machine does not stretch a gap past the steady rule's 2.5 s, and keeps
//! its steps at least 400 ms away from an expiry. The fake orders hash fields (the decoder reads
//! them into a map) and takes the first 16 of `SRANDMEMBER`, which is all of them here.

use std::time::{Duration, Instant};

use sfu_cluster::membership::{BeatRoom, LeaseMember, LeaveOutcome, RedisCmd, Reply, RoomSid, ScriptValue, keys};
use sfu_cluster::testing::{FakeClock, FakeRedis, Job, RealRedis, RedisServer};
use sfu_cluster::{BootId, NodeId};
use sfu_proto::RoomId;

#[derive(Debug)]
enum Step {
    Beat(&'static str, &'static [&'static str]),
    Join(&'static str, &'static str),
    Leave(&'static str, &'static str, bool),
    Unregister(&'static str, &'static [(&'static str, bool)]),
    /// `FLUSHALL` and `SCRIPT FLUSH` (the next `EVALSHA` is answered `NOSCRIPT`).
    Flush,
    /// Compare a room's record and lease members.
    Record(&'static str),
    /// Wait until this many milliseconds after the start.
    At(u64),
}

use Step::*;

/// The same room names everywhere; `odd:room%` needs escaping in keys.
const ODD: &str = "odd:room%";

const SCENARIO: &[Step] = &[
    Beat("a", &[]),
    Beat("b", &[]),
    Join("a", "r1"),
    Join("b", "r1"),
    Join("c", "r2"),
    Join("c", ODD),
    Leave("b", "r1", true),  // held: a's lease is live
    Leave("c", "r2", true),  // deferred: beats heard for under 6 s
    Leave("a", "r9", false), // kept: no lease, but a linked peer holds it
    Record("r1"),
    Record("r2"),
    At(1500),
    Beat("a", &["r1"]),
    Beat("b", &["r4"]), // a record made by a beat alone
    At(3000),
    Beat("a", &["r1"]),
    Beat("b", &["r4"]),
    At(4500),
    Beat("a", &["r1"]),
    Beat("b", &["r4"]),
    At(6000),
    Beat("a", &["r1"]), // steady for 6 s: this beat sweeps (and must keep every room)
    Beat("b", &["r4"]),
    At(6500),
    Join("a", ODD),        // c's lease lapsed at 6 s
    Leave("a", ODD, true), // deleted
    Leave("c", "r2", true),
    Record(ODD),
    Record("r2"),
    Beat("c", &[]),
    Unregister("b", &[("r4", true)]),
    Beat("a", &["r1"]),
    Flush,
    Beat("a", &["r1"]),     // the registry was lost; r1 comes back with a's sid
    Leave("a", "r1", true), // deferred: the flush took the steady clock
    Join("b", "r1"),
    Record("r1"),
];

fn member(name: &str) -> LeaseMember {
    LeaseMember { node: NodeId(format!("ND_{name}")), boot: BootId(format!("BT{name}")) }
}

fn sid(name: &str) -> RoomSid {
    RoomSid(format!("RM_{name}"))
}

fn command(step: &Step) -> Option<RedisCmd> {
    Some(match *step {
        Beat(who, rooms) => RedisCmd::Beat {
            lease: member(who),
            fields: vec![("boot", member(who).boot.0), ("state", "serving".into()), ("busy", "0.250".into())],
            rooms: rooms
                .iter()
                .map(|r| BeatRoom { room: RoomId::from(*r), sid: sid(who), want_holders: true })
                .collect(),
        },
        Join(who, room) => RedisCmd::Join { room: RoomId::from(room), lease: member(who), sid: sid(who) },
        Leave(who, room, may_delete) => RedisCmd::Leave { room: RoomId::from(room), lease: member(who), may_delete },
        Unregister(who, rooms) => RedisCmd::Unregister {
            lease: member(who),
            rooms: rooms.iter().map(|(r, may)| (RoomId::from(*r), *may)).collect(),
        },
        Flush | Record(_) | At(_) => return None,
    })
}

struct Twin {
    real: RealRedis,
    fake: FakeRedis,
    t0: Instant,
    real_ms0: i64,
}

fn text(value: &ScriptValue) -> String {
    match value {
        ScriptValue::Text(t) => t.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn texts(value: ScriptValue) -> Vec<String> {
    match value {
        ScriptValue::List(items) => items.iter().map(text).collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}

/// The reply with its Redis time taken out, after checking the two agree on it.
fn timeless(reply: Reply) -> (Reply, Option<u64>) {
    match reply {
        Reply::Beat(mut beat) => {
            let ms = std::mem::take(&mut beat.redis_ms);
            (Reply::Beat(beat), Some(ms))
        }
        Reply::Join(mut join) => {
            let ms = std::mem::take(&mut join.redis_ms);
            (Reply::Join(join), Some(ms))
        }
        other => (other, None),
    }
}

impl Twin {
    async fn new(url: &str) -> Self {
        let mut real = RealRedis::connect(url).await.expect("redis-server answers");
        let t0 = Instant::now();
        let real_ms0 = time(&mut real).await;
        let fake = FakeRedis::new(FakeClock::new(t0, real_ms0 - 1_700_000_000_000));
        Self { real, fake, t0, real_ms0 }
    }

    /// The fake's instant for a real Redis time.
    fn at(&self, ms: i64) -> Instant {
        self.t0 + Duration::from_millis(u64::try_from(ms - self.real_ms0).expect("Redis time goes forward"))
    }

    async fn run(&mut self, cmd: RedisCmd, step: &Step) -> Reply {
        let call = cmd.to_call();
        let before = time(&mut self.real).await;
        let real = self.real.run(&call).await.unwrap_or_else(|e| panic!("{step:?} on redis-server: {e:?}"));
        let (real, real_ms) = timeless(call.script.decode(&real).unwrap_or_else(|e| panic!("{step:?}: {e:?}")));
        let ms = real_ms.map_or(before, |ms| i64::try_from(ms).expect("Redis time fits"));
        let job = Job { from: cmd.sender().clone(), tag: 0, call: call.clone() };
        let fake = self.fake.run(&job, self.at(ms));
        let (fake, fake_ms) = timeless(call.script.decode(&fake).unwrap_or_else(|e| panic!("{step:?}: {e:?}")));
        assert_eq!(real, fake, "{step:?}: the reply of redis-server (left) and of the fake (right)");
        assert_eq!(real_ms, fake_ms, "{step:?}: the fake ran at the script's time");
        real
    }

    /// The same keys, each with the same content (times to within 1 s).
    async fn same_keys(&mut self, step: &Step) {
        let ms = time(&mut self.real).await;
        let mut real = texts(self.real.command(&["KEYS", "sfu:*"]).await.expect("KEYS"));
        real.sort();
        let fake = self.fake.keyspace().live_keys(ms);
        assert_eq!(real, fake, "after {step:?}: keys of redis-server (left) and of the fake (right)");
        for key in &real {
            let ks = self.fake.keyspace();
            match text(&self.real.command(&["TYPE", key]).await.expect("TYPE")).as_str() {
                "hash" => {
                    let flat = texts(self.real.command(&["HGETALL", key]).await.expect("HGETALL"));
                    let real: Vec<(String, String)> = flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                    let fake = ks.peek_hash(key, ms).unwrap_or_else(|| panic!("{key} is a hash in the fake"));
                    let mut real = real;
                    real.sort();
                    assert_eq!(real.len(), fake.len(), "after {step:?}: {key}: {real:?} / {fake:?}");
                    for ((field, value), (fake_field, fake_value)) in real.iter().zip(fake) {
                        assert_eq!(field, fake_field, "after {step:?}: {key}");
                        same_value(value, fake_value, &format!("after {step:?}: {key}.{field}"));
                    }
                }
                "zset" => {
                    let flat =
                        texts(self.real.command(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).await.expect("ZRANGE"));
                    let mut real: Vec<(String, String)> =
                        flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                    real.sort();
                    let fake = ks.peek_zset(key).unwrap_or_else(|| panic!("{key} is a sorted set in the fake"));
                    assert_eq!(real.len(), fake.len(), "after {step:?}: {key}: {real:?} / {fake:?}");
                    for ((member, score), (fake_member, fake_score)) in real.iter().zip(fake) {
                        assert_eq!(member, fake_member, "after {step:?}: {key}");
                        same_value(score, &fake_score.to_string(), &format!("after {step:?}: {key} {member}"));
                    }
                }
                "set" => {
                    let mut real = texts(self.real.command(&["SMEMBERS", key]).await.expect("SMEMBERS"));
                    real.sort();
                    let fake: Vec<String> = ks.peek_set(key).map(|s| s.iter().cloned().collect()).unwrap_or_default();
                    assert_eq!(real, fake, "after {step:?}: {key}");
                }
                other => panic!("after {step:?}: {key} is a {other}: no script writes one"),
            }
        }
    }

    async fn same_record(&mut self, room: &str) -> Option<String> {
        let ms = time(&mut self.real).await;
        let (record, leases) = (keys::room_key(&RoomId::from(room)), keys::leases_key(&RoomId::from(room)));
        let real_sid = match self.real.command(&["HGET", &record, "sid"]).await.expect("HGET") {
            ScriptValue::Nil => None,
            value => Some(text(&value)),
        };
        let fake_sid = self.fake.keyspace().peek_hash(&record, ms).and_then(|h| h.get("sid").cloned());
        assert_eq!(real_sid, fake_sid, "{room}'s record");
        let real_members = texts(self.real.command(&["ZRANGE", &leases, "0", "-1"]).await.expect("ZRANGE"));
        let mut fake_members: Vec<String> =
            self.fake.keyspace().peek_zset(&leases).map(|z| z.keys().cloned().collect()).unwrap_or_default();
        let mut real_sorted = real_members.clone();
        real_sorted.sort();
        fake_members.sort();
        assert_eq!(real_sorted, fake_members, "{room}'s lease members, ended ones too");
        real_sid
    }
}

/// Equal, or both Redis times (or scores made of them) within 1 s of each other.
fn same_value(real: &str, fake: &str, what: &str) {
    match (real.parse::<i64>(), fake.parse::<i64>()) {
        (Ok(r), Ok(f)) if r > 1_000_000_000_000 => assert!(r.abs_diff(f) <= 1000, "{what}: {r} / {f}"),
        _ => assert_eq!(real, fake, "{what}"),
    }
}

async fn time(redis: &mut RealRedis) -> i64 {
    let t = texts(redis.command(&["TIME"]).await.expect("TIME"));
    let (secs, micros): (i64, i64) = (t[0].parse().expect("seconds"), t[1].parse().expect("microseconds"));
    secs * 1000 + micros / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_as_redis_server_does() {
    let server = RedisServer::start();
    let mut twin = Twin::new(&server.url()).await;
    let mut outcomes = Vec::new();
    let mut registry_lost = 0;
    for step in SCENARIO {
        match (step, command(step)) {
            (_, Some(cmd)) => match twin.run(cmd, step).await {
                Reply::Leave(outcome) => outcomes.push(outcome),
                Reply::Unregister(list) => outcomes.extend(list),
                Reply::Beat(beat) if !beat.key_existed => registry_lost += 1,
                _ => {}
            },
            (Flush, _) => {
                twin.real.command(&["FLUSHALL"]).await.expect("FLUSHALL");
                twin.real.command(&["SCRIPT", "FLUSH"]).await.expect("SCRIPT FLUSH");
                twin.fake.flush();
            }
            (Record(room), _) => {
                twin.same_record(room).await;
            }
            (At(ms), _) => tokio::time::sleep_until((twin.t0 + Duration::from_millis(*ms)).into()).await,
            _ => unreachable!("every other step is a command"),
        }
        twin.same_keys(step).await;
    }
    assert!(twin.fake.keyspace().violations.is_empty(), "{:?}", twin.fake.keyspace().violations);
    // The scenario reached what it was written for.
    for outcome in [LeaveOutcome::Held, LeaveOutcome::Kept, LeaveOutcome::Deferred, LeaveOutcome::Deleted] {
        assert!(outcomes.contains(&outcome), "no leave was {outcome:?}: {outcomes:?}");
    }
    assert_eq!(registry_lost, 4, "first beats of a, b, c and a's after the flush");
    assert!(twin.t0.elapsed() < Duration::from_secs(30), "the schedule held");
    assert_eq!(twin.same_record("r1").await, Some("RM_a".into()));
    assert_eq!(twin.same_record(ODD).await, None);
}
