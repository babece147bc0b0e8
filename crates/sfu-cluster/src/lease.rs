//! What a node gets when its first participant of a room arrives.

use crate::membership::{LeaseMember, RoomSid};

/// A room as this node joins it: the record's id and the other holders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomLease {
    /// The room record's id (`RM_…`), the same on every node holding the room once verified.
    pub sid: RoomSid,
    /// Other incarnations holding the room (from Redis if verified, else as last known).
    pub peers: Vec<LeaseMember>,
    /// Redis answered the join in time. If not, `sid` is this node's proposal and the answer
    /// arrives later as an event (the record's sid may then differ: the first proposal wins).
    pub verified: bool,
}
