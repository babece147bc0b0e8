use thiserror::Error;

/// Why a media-plane request failed. Each variant is reported to the client that caused it.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The SDP could not be parsed or negotiated (wrong state, no usable codec...).
    #[error("sdp rejected: {0}")]
    Sdp(String),
    /// The request named a connection that is gone (closed, or never existed).
    #[error("connection not found")]
    NoConnection,
    /// The request named a track this connection doesn't carry.
    #[error("track not found")]
    NoTrack,
    /// The request named a link to another node that is not open (or was closed).
    #[error("relay link not open")]
    NoLink,
    /// A relay stream would reuse an SSRC already sent on its link: under the link's one key
    /// its packet indices could repeat, so the peer must issue new SSRCs.
    #[error("relay SSRC {0} already used on this link")]
    SsrcReused(u32),
    /// The room's audio cannot be mixed: the build has no Opus codec (feature `audio-mix`).
    #[error("audio mixing unavailable: {0}")]
    AudioMixUnavailable(String),
    /// The shard handling the connection stopped.
    #[error("media shard unavailable")]
    ShardGone,
    /// Any other failure inside the WebRTC stack.
    #[error("webrtc: {0}")]
    Rtc(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rtc::shared::error::Error> for MediaError {
    fn from(e: rtc::shared::error::Error) -> Self {
        MediaError::Rtc(e.to_string())
    }
}
