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
