//! Why the server closed a signaling WebSocket: the close codes of docs/protocol.md, one enum.
//! The web SDK mirrors the fatal ones in `web/sdk/signal-client.js` (`FATAL_CLOSE_CODES`), and a
//! test here checks that it does.

/// A WebSocket close code the server sends on `/rtc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the participant left (`leave`); a departure timeout ends with it too.
    Left,
    /// 1001: the server is shutting down (SIGTERM, after `cluster.drain_timeout_secs`). The
    /// session ends with the server; a client may resume or join elsewhere.
    GoingAway,
    /// 1002: the socket failed (a WebSocket protocol error) before a message could be read.
    ProtocolError,
    /// 1009: a message exceeded `rtc.max_message_bytes`.
    MessageTooBig,
    /// 4307: this node sent the client to another (a `redirect` message just before names it):
    /// it is draining or full, and another node of the cluster serves. Not an end: the client
    /// joins there with the same token.
    Redirected,
    /// 4400: the first message was unreadable or neither `join` nor `resume`.
    BadFirstMessage,
    /// 4401: the access token in `join` was rejected; the reason names the auth code.
    Unauthorized,
    /// 4403: the token grants nothing in this room.
    NotAllowed,
    /// 4404: `resume` failed, or the participant is no longer in the room.
    SessionNotFound,
    /// 4408: no first message within the join timeout.
    JoinTimeout,
    /// 4409: the same identity joined again, or the session was resumed on another socket.
    Replaced,
    /// 4410: removed from the room (reserved for admin removal).
    Removed,
    /// 4429: the client stopped reading: its outgoing queue overflowed or a write timed out. Its
    /// queued messages were dropped; it may resume, which sends it the room's state afresh.
    TooSlow,
    /// 4503: `join` refused for capacity: the room or the node is full (`limits.*`), or the node
    /// is shutting down. The reason starts with the error code (`room_full`, `node_full` or
    /// `draining`), sent in an `error` just before.
    Full,
}

impl CloseCode {
    /// Every close code, for tables and tests.
    pub const ALL: [CloseCode; 14] = [
        Self::Left,
        Self::GoingAway,
        Self::ProtocolError,
        Self::MessageTooBig,
        Self::Redirected,
        Self::BadFirstMessage,
        Self::Unauthorized,
        Self::NotAllowed,
        Self::SessionNotFound,
        Self::JoinTimeout,
        Self::Replaced,
        Self::Removed,
        Self::TooSlow,
        Self::Full,
    ];

    /// The number sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            Self::Left => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::MessageTooBig => 1009,
            Self::Redirected => 4307,
            Self::BadFirstMessage => 4400,
            Self::Unauthorized => 4401,
            Self::NotAllowed => 4403,
            Self::SessionNotFound => 4404,
            Self::JoinTimeout => 4408,
            Self::Replaced => 4409,
            Self::Removed => 4410,
            Self::TooSlow => 4429,
            Self::Full => 4503,
        }
    }

    /// The name the SDK gives it (its `disconnected` event's `reason`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::GoingAway => "going_away",
            Self::ProtocolError => "protocol_error",
            Self::MessageTooBig => "message_too_big",
            Self::Redirected => "redirected",
            Self::BadFirstMessage => "bad_first_message",
            Self::Unauthorized => "unauthorized",
            Self::NotAllowed => "not_allowed",
            Self::SessionNotFound => "session_not_found",
            Self::JoinTimeout => "join_timeout",
            Self::Replaced => "replaced",
            Self::Removed => "removed",
            Self::TooSlow => "too_slow",
            Self::Full => "full",
        }
    }

    /// Whether the session is over for the client: after these it must join again (or fix its
    /// request). After a clean leave there is nothing to resume; after a broken socket, falling
    /// behind or a server going away it may resume (elsewhere, for the last).
    pub fn is_fatal(self) -> bool {
        !matches!(self, Self::Left | Self::GoingAway | Self::ProtocolError | Self::TooSlow | Self::Redirected)
    }

    /// The close code with this number, if the server sends it.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        for (i, a) in CloseCode::ALL.iter().enumerate() {
            assert_eq!(CloseCode::from_code(a.code()), Some(*a));
            for b in &CloseCode::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
        }
        assert_eq!(CloseCode::from_code(4999), None);
    }

    /// The SDK's table (web/sdk/signal-client.js) lists every fatal code with the same name.
    #[test]
    fn the_web_sdk_mirrors_the_table() {
        let sdk = include_str!("../../../web/sdk/signal-client.js");
        for code in CloseCode::ALL.into_iter().filter(|c| c.is_fatal()) {
            let entry = format!("[{}, '{}']", code.code(), code.name());
            assert!(sdk.contains(&entry), "web/sdk/signal-client.js lacks {entry}");
        }
    }
}
