//! One script call against the real Redis: `EVALSHA`, then `EVAL` when Redis does not know the
//! script (`NOSCRIPT`: its script cache went with a restart or `SCRIPT FLUSH`), and the answer
//! as the [`ScriptValue`] the shared decoder reads. Every error becomes a [`Failure`] of one
//! kind, the label of `sfu_cluster_redis_failures_total`.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Value};

use super::meter;
use crate::membership::{RedisCmd, RedisFailure, Reply, Script, ScriptCall, ScriptValue};

/// Why a command got no answer the core can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No answer in time (Redis paused or overloaded, or a connection silently gone).
    Timeout,
    /// No connection, or it broke.
    Connection,
    /// Redis answered with an error.
    Error,
    /// An answer the decoder does not understand (a script of another version, or a bug).
    Decode,
}

impl FailureKind {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connection => "connection",
            FailureKind::Error => "error",
            FailureKind::Decode => "decode",
        }
    }
}

/// A failed command: its kind and what the client said, for the log.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// A command given up at the supervisor's own deadline.
    pub(crate) fn deadline(after: Duration) -> Self {
        Self::new(FailureKind::Timeout, format!("no answer within {after:?}"))
    }

    fn from_redis(error: &RedisError) -> Self {
        let kind = if error.is_timeout() {
            FailureKind::Timeout
        } else if error.is_io_error() || error.is_unrecoverable_error() {
            FailureKind::Connection
        } else {
            FailureKind::Error
        };
        Self::new(kind, error.to_string())
    }

    /// As the core takes it.
    pub(crate) fn to_core(&self) -> RedisFailure {
        match self.kind {
            FailureKind::Timeout => RedisFailure::Timeout,
            FailureKind::Connection => RedisFailure::Disconnected,
            FailureKind::Error | FailureKind::Decode => RedisFailure::Error(self.detail.clone()),
        }
    }
}

/// Each script's SHA1, the name `EVALSHA` knows it by.
static SHAS: LazyLock<[String; 4]> = LazyLock::new(|| {
    [Script::Beat, Script::Join, Script::Leave, Script::Unregister]
        .map(|s| redis::Script::new(s.lua()).get_hash().to_owned())
});

fn sha(script: Script) -> &'static str {
    let i = match script {
        Script::Beat => 0,
        Script::Join => 1,
        Script::Leave => 2,
        Script::Unregister => 3,
    };
    &SHAS[i]
}

async fn eval(manager: &mut ConnectionManager, verb: &str, body: &str, call: &ScriptCall) -> Result<Value, RedisError> {
    redis::cmd(verb).arg(body).arg(call.keys.len()).arg(&call.keys).arg(&call.args).query_async(manager).await
}

/// Runs a script call and returns its answer as a script value.
pub(crate) async fn run_script(manager: &mut ConnectionManager, call: &ScriptCall) -> Result<ScriptValue, Failure> {
    let value = match eval(manager, "EVALSHA", sha(call.script), call).await {
        Err(e) if e.kind() == ErrorKind::NoScriptError => {
            meter::failure(meter::NOSCRIPT_RETRY);
            eval(manager, "EVAL", call.script.lua(), call).await
        }
        other => other,
    };
    let value = value.map_err(|e| Failure::from_redis(&e))?;
    script_value(value).map_err(|e| Failure::new(FailureKind::Decode, e))
}

/// Runs a core command: its script, and the answer decoded.
pub(crate) async fn execute(mut manager: ConnectionManager, cmd: &RedisCmd) -> Result<Reply, Failure> {
    let call = cmd.to_call();
    let value = run_script(&mut manager, &call).await?;
    call.script.decode(&value).map_err(|e| Failure::new(FailureKind::Decode, e.0))
}

#[cfg(feature = "testing")]
/// Runs any command (tests and tools: `FLUSHALL`, `EXISTS`, ...), its answer as a script value.
pub(crate) async fn run_command(manager: &mut ConnectionManager, args: &[&str]) -> Result<ScriptValue, Failure> {
    let Some((verb, rest)) = args.split_first() else {
        return Err(Failure::new(FailureKind::Error, "empty command"));
    };
    let value: Value = redis::cmd(verb).arg(rest).query_async(manager).await.map_err(|e| Failure::from_redis(&e))?;
    script_value(value).map_err(|e| Failure::new(FailureKind::Decode, e))
}

/// A reply as Redis converts a Lua value (RESP2): integers, bulk strings, arrays, nil.
fn script_value(value: Value) -> Result<ScriptValue, String> {
    Ok(match value {
        Value::Nil => ScriptValue::Nil,
        Value::Int(n) => ScriptValue::Int(n),
        Value::BulkString(bytes) => ScriptValue::Text(String::from_utf8(bytes).map_err(|e| e.to_string())?),
        Value::SimpleString(text) => ScriptValue::Text(text),
        Value::Okay => ScriptValue::Text("OK".to_owned()),
        Value::Array(items) => ScriptValue::List(items.into_iter().map(script_value).collect::<Result<_, _>>()?),
        other => return Err(format!("unexpected reply {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_convert_as_lua_values_do() {
        let reply = Value::Array(vec![
            Value::Int(7),
            Value::BulkString(b"sid".to_vec()),
            Value::Nil,
            Value::Array(vec![Value::Okay]),
        ]);
        let expected = ScriptValue::List(vec![
            ScriptValue::Int(7),
            ScriptValue::Text("sid".into()),
            ScriptValue::Nil,
            ScriptValue::List(vec![ScriptValue::Text("OK".into())]),
        ]);
        assert_eq!(script_value(reply), Ok(expected));
        assert!(script_value(Value::Double(1.5)).is_err());
        assert!(script_value(Value::BulkString(vec![0xff])).is_err());
    }

    #[test]
    fn every_script_has_its_own_sha() {
        let shas = [Script::Beat, Script::Join, Script::Leave, Script::Unregister].map(sha);
        for (i, a) in shas.iter().enumerate() {
            assert_eq!(a.len(), 40);
            assert!(shas[i + 1..].iter().all(|b| b != a));
        }
    }
}
