//! Typed identifiers. Strings on the wire, distinct types in code so a track id is never passed
//! where a participant id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id for a log line: control characters escaped (see [`Escaped`]).
            pub fn escaped(&self) -> Escaped<'_> {
                Escaped(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

/// Text from outside (a room name, an identity) shown so it cannot forge log lines or
/// terminal escapes: control characters (and the Unicode line separators and bidirectional
/// overrides, which some viewers honour) are written as `\n`, `\r`, `\t` or `\u{..}`, and a
/// backslash as `\\`, so an escaped sequence and the same characters typed by a user differ.
/// Everything else, non-ASCII letters included, is written as it is.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(needs_escape) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().expect("found at i");
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                other => write!(f, "\\u{{{:x}}}", other as u32)?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\\' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

string_id!(
    /// A room's name, chosen by whoever mints the token.
    RoomId
);
string_id!(
    /// Server-assigned id of one participant session (`PA_...`); stays the same across a resume.
    ParticipantId
);
string_id!(
    /// Server-assigned id of one published track (`TR_...`).
    TrackId
);
string_id!(
    /// A node's name in a cluster: `ND_` and random characters per boot, or a fixed configured id.
    NodeId
);
string_id!(
    /// One run of a node process. A restarted node keeps its [`NodeId`] (if fixed) but gets a new
    /// boot, so nothing of the old run's leases is mistaken for the new one's.
    BootId
);
string_id!(
    /// The user-facing name of a participant, from the token's `sub` claim. Unique in a room.
    Identity
);

/// A synchronization source identifier of an RTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ssrc(pub u32);

/// A simulcast restriction identifier (RFC 8851) as the publisher named it: `q`, `h`, `f`, `0`...
/// Names carry no order; the order of layers comes from their resolution or bitrate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rid(pub String);

/// Which of a participant's two peer connections a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    /// The client offers; carries the client's own tracks and its data channel.
    Publisher,
    /// The server offers; carries everyone else's tracks.
    Subscriber,
}

/// Media kind of a track, from its SDP media section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// An `m=audio` section (Opus).
    Audio,
    /// An `m=video` section (VP8 or H.264).
    Video,
}

/// What a track shows; the allocator ranks screen shares above cameras.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// A camera; the server's choice for a video section the publisher did not describe.
    Camera,
    /// A microphone; the server's choice for an audio section the publisher did not describe.
    Microphone,
    /// A shared screen or window; served before cameras when bandwidth is short.
    ScreenShare,
    /// The publisher described the track but gave no source.
    #[default]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_cannot_break_a_log_line() {
        let forged = "standup\n2026-01-01T00:00:00Z  INFO participant joined identity=admin";
        let shown = RoomId::from(forged).escaped().to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert_eq!(shown, "standup\\n2026-01-01T00:00:00Z  INFO participant joined identity=admin");
        assert_eq!(Escaped("a\r\tb\u{1b}[31mred\u{7f}\u{85}").to_string(), "a\\r\\tb\\u{1b}[31mred\\u{7f}\\u{85}");
        assert_eq!(Escaped("x\u{2028}y\u{202e}z").to_string(), "x\\u{2028}y\\u{202e}z");
        // A backslash typed by the user is doubled, so it never looks like an escape.
        assert_eq!(Identity::from("a\\nb").escaped().to_string(), "a\\\\nb");
        // Ordinary names, non-ASCII included, are unchanged.
        for name in ["alice", "Zoë Ångström", "会議室 1", "r-1_x.y@z"] {
            assert_eq!(Escaped(name).to_string(), name);
        }
    }
}
