//! What a script returns, as Redis hands it to the client.

/// A value a script returns, as Redis converts Lua values: numbers to integers, strings to
/// bulk strings, tables to arrays, `false` and `nil` to a null reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptValue {
    /// `false` or `nil`.
    Nil,
    /// A Lua number, truncated.
    Int(i64),
    /// A Lua string.
    Text(String),
    /// A Lua table (up to its first nil).
    List(Vec<ScriptValue>),
}
