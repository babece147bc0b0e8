//! The error a failed room request answers with: the code the client is told and why.

use sfu_proto::ErrorCode;
use sfu_transport::MediaError;

/// A request that failed, with the code the client is told.
#[derive(Debug)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<MediaError> for RequestError {
    fn from(e: MediaError) -> Self {
        let code = match e {
            MediaError::Sdp(_) => ErrorCode::BadSdp,
            MediaError::NoTrack => ErrorCode::UnknownTrack,
            _ => ErrorCode::Internal,
        };
        Self { code, message: e.to_string() }
    }
}
