//! Why the rtc stack refused a datagram from a client, as a value to count.

use rtc::shared::error::Error;

/// What a refused inbound datagram was refused for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IngressRejection {
    /// SRTP or SRTCP with an index already received or behind the replay window: a replay, or
    /// a retransmission that came too late.
    SrtpReplay,
    /// SRTP or SRTCP whose authentication tag did not verify (wrong keys, forged, corrupt).
    SrtpAuth,
    /// STUN that failed its checks (username, MESSAGE-INTEGRITY, role).
    Stun,
    /// Anything else (malformed packets, DTLS alerts, data before the handshake).
    Other,
}

impl IngressRejection {
    pub const ALL: [IngressRejection; 4] = [Self::SrtpReplay, Self::SrtpAuth, Self::Stun, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SrtpReplay => "srtp_replay",
            Self::SrtpAuth => "srtp_auth",
            Self::Stun => "stun",
            Self::Other => "other",
        }
    }

    /// Classifies an error of `RTCPeerConnection::handle_read` for `datagram`.
    pub fn of(error: &Error, datagram: &[u8]) -> Self {
        match error {
            Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..) | Error::ErrDuplicated => Self::SrtpReplay,
            Error::ErrFailedToVerifyAuthTag | Error::RtpFailedToVerifyAuthTag | Error::RtcpFailedToVerifyAuthTag => {
                Self::SrtpAuth
            }
            _ if crate::stun::is_stun(datagram) => Self::Stun,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_told_apart() {
        let rtp = [0x80u8, 96, 0, 1];
        let stun = {
            let mut p = vec![0u8, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42];
            p.resize(20, 0);
            p
        };
        let cases = [
            (Error::SrtpSsrcDuplicated(1, 2), &rtp[..], IngressRejection::SrtpReplay),
            (Error::SrtcpSsrcDuplicated(1, 2), &rtp[..], IngressRejection::SrtpReplay),
            (Error::ErrFailedToVerifyAuthTag, &rtp[..], IngressRejection::SrtpAuth),
            (Error::RtcpFailedToVerifyAuthTag, &rtp[..], IngressRejection::SrtpAuth),
            (Error::ErrIntegrityMismatch, &stun[..], IngressRejection::Stun),
            (Error::ErrIntegrityMismatch, &rtp[..], IngressRejection::Other),
        ];
        for (error, datagram, expected) in cases {
            assert_eq!(IngressRejection::of(&error, datagram), expected, "{error}");
        }
    }
}
