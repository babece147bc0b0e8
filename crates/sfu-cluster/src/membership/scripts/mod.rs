//! The four Lua scripts (docs/cluster.md, "Redis key schema"), each beside its mirror in Rust
//! that `testing::FakeRedis` runs: read the two line by line; the contract test (against a real
//! redis-server) keeps them equal.
//!
//! Every script reads Redis's own `TIME`, so expiries are judged by one clock whatever the
//! nodes' clocks say (Redis 7 replicates scripts as effects, so `TIME` may precede writes).
//! Keys known in advance come in `KEYS`; the beat also reads node keys named in `sfu:nodes`
//! and the orphan sweep builds room keys from `sfu:rooms`, which suits one Redis server (not
//! Redis Cluster, where every key must be declared).

pub mod beat;
pub mod join;
#[cfg(feature = "testing")]
mod keyspace;
pub mod leave;
pub mod unregister;

#[cfg(feature = "testing")]
pub use keyspace::{Keyspace, RoomDeletion};

/// One of the four scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Script {
    /// `scripts::beat`.
    Beat,
    /// `scripts::join`.
    Join,
    /// `scripts::leave`.
    Leave,
    /// `scripts::unregister`.
    Unregister,
}

impl Script {
    /// The Lua text, for `SCRIPT LOAD` / `EVAL`.
    pub fn lua(self) -> &'static str {
        match self {
            Script::Beat => beat::LUA,
            Script::Join => join::LUA,
            Script::Leave => leave::LUA,
            Script::Unregister => unregister::LUA,
        }
    }
}

/// The start of every script: Redis's time in milliseconds, and the constants of `keys`.
macro_rules! prelude {
    () => {
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local TTL, GAP, STEADY, ORPHAN, SWEEP = 6000, 2500, 6000, 60000, 16

-- Beats have been heard without a gap for a lease's life: every live holder has rewritten its
-- lease since any outage, so a missing lease means a missing holder.
local function steady(clock)
  local c = redis.call('HMGET', clock, 'last_beat', 'steady_since')
  local last, since = tonumber(c[1]), tonumber(c[2])
  return last ~= nil and since ~= nil and now - last <= GAP and now - since >= STEADY
end
"#
    };
}
pub(crate) use prelude;

#[cfg(feature = "testing")]
pub(crate) use mirror::*;

#[cfg(feature = "testing")]
mod mirror {
    use super::Keyspace;
    use crate::membership::keys::{BEAT_GAP_MS, ORPHAN_MS, STEADY_MS, SWEEP_ROOMS, TTL_MS};

    pub const TTL: i64 = TTL_MS as i64;
    pub const GAP: i64 = BEAT_GAP_MS as i64;
    pub const STEADY: i64 = STEADY_MS as i64;
    pub const ORPHAN: i64 = ORPHAN_MS as i64;
    pub const SWEEP: usize = SWEEP_ROOMS;

    /// `steady(clock)` of the prelude.
    pub fn steady(ks: &mut Keyspace, clock: &str) -> bool {
        let now = ks.time();
        let last = ks.hget(clock, "last_beat").and_then(|v| v.parse::<i64>().ok());
        let since = ks.hget(clock, "steady_since").and_then(|v| v.parse::<i64>().ok());
        matches!((last, since), (Some(last), Some(since)) if now - last <= GAP && now - since >= STEADY)
    }

    /// `ARGV[i]` (1-based, as in Lua).
    pub fn arg(args: &[String], i: usize) -> &str {
        args.get(i - 1).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::Script;
    use crate::membership::keys::{BEAT_GAP_MS, ORPHAN_MS, STEADY_MS, SWEEP_ROOMS, TTL_MS};

    #[test]
    fn the_lua_constants_are_the_rust_ones() {
        let line = format!(
            "local TTL, GAP, STEADY, ORPHAN, SWEEP = {TTL_MS}, {BEAT_GAP_MS}, {STEADY_MS}, {ORPHAN_MS}, {SWEEP_ROOMS}"
        );
        for script in [Script::Beat, Script::Join, Script::Leave, Script::Unregister] {
            assert!(script.lua().contains(&line), "{script:?}");
        }
    }

    /// Redis runs Lua 5.1: each script must at least parse there. Skipped where `luac5.1` is
    /// not installed (Debian's `lua5.1`); the contract test runs them in a real Redis.
    #[test]
    fn the_scripts_parse_as_lua_5_1() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        for script in [Script::Beat, Script::Join, Script::Leave, Script::Unregister] {
            let child = Command::new("luac5.1").args(["-p", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn();
            let Ok(mut child) = child else {
                eprintln!("luac5.1 not installed: Lua syntax not checked");
                return;
            };
            child.stdin.take().expect("piped").write_all(script.lua().as_bytes()).expect("luac reads");
            let out = child.wait_with_output().expect("luac runs");
            assert!(out.status.success(), "{script:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
