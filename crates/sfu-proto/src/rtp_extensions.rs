//! The RTP header extensions the server and its load harness negotiate, by URI, in one place.

/// RFC 8843 section 15: the media section (`mid`) a packet belongs to.
pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// RFC 8852: the simulcast layer (`rid`) a packet belongs to.
pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852: the layer an RTX packet repairs (its `rid`).
pub const REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// RFC 6464: the loudness of an audio packet, read for active speakers.
pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// Transport-wide sequence numbers for transport-cc feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).
pub const TRANSPORT_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
