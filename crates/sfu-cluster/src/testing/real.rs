//! The real Redis as the contract test and the live tests reach it: script calls go through the
//! supervisor's own path (`EVALSHA`, `EVAL` on `NOSCRIPT`, the same value conversion), so a
//! test compares exactly what the supervisor would hand the decoder.

use redis::aio::ConnectionManager;

use crate::membership::{RedisFailure, ScriptCall, ScriptValue};
use crate::redis_cluster::{Failure, manager_config, run_command, run_script};

/// A connection to a real Redis.
pub struct RealRedis {
    manager: ConnectionManager,
}

fn failure(f: Failure) -> RedisFailure {
    f.to_core()
}

impl RealRedis {
    /// Connects with the supervisor's settings (1 s response and connection timeouts).
    pub async fn connect(url: &str) -> Result<Self, RedisFailure> {
        let client = redis::Client::open(url).map_err(|e| RedisFailure::Error(e.to_string()))?;
        let manager = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|e| RedisFailure::Error(e.to_string()))?;
        Ok(Self { manager })
    }

    /// Runs a script call as the supervisor does.
    pub async fn run(&mut self, call: &ScriptCall) -> Result<ScriptValue, RedisFailure> {
        run_script(&mut self.manager, call).await.map_err(failure)
    }

    /// Any command, e.g. `["FLUSHALL"]` or `["HGET", key, field]`.
    pub async fn command(&mut self, args: &[&str]) -> Result<ScriptValue, RedisFailure> {
        run_command(&mut self.manager, args).await.map_err(failure)
    }
}
