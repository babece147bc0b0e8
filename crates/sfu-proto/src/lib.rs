//! Identifiers and signaling messages of the SFU.
//!
//! Everything a client and the server say to each other over `/rtc` is a [`ClientMessage`] or a
//! [`ServerMessage`], serialized as JSON objects tagged by `"type"` (see docs/protocol.md).
//! This crate depends on serde only, so clients and tools can share it.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod close_code;
pub mod ids;
pub mod mesh;
pub mod messages;
pub mod rtp_extensions;

pub use close_code::CloseCode;
pub use ids::*;
pub use mesh::*;
pub use messages::*;

/// Version of the signaling protocol spoken by this build; sent in `joined`.
pub const PROTOCOL_VERSION: u32 = 1;
