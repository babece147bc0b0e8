//! The `[limits]` as rooms apply them: who may join, what an offer may carry, how many candidates
//! a connection may be sent. Offers are checked on their text, before the media plane sees them:
//! making the tracks is what costs. Every refusal is counted in `sfu_limit_refusals_total{limit}`.

use sfu_proto::ErrorCode;
use std::sync::atomic::Ordering;

use super::{Hub, MediaControl, RequestError, Room};

/// One bound of `[limits]`; its name is the config key and the metric's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    TracksPerParticipant,
    MediaSectionsPerOffer,
    WhipBodyBytes,
    CandidatesPerConnection,
    ParticipantsPerRoom,
    ParticipantsPerNode,
    RoomsPerNode,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Self::TracksPerParticipant => "tracks_per_participant",
            Self::MediaSectionsPerOffer => "media_sections_per_offer",
            Self::WhipBodyBytes => "whip_body_bytes",
            Self::CandidatesPerConnection => "candidates_per_connection",
            Self::ParticipantsPerRoom => "participants_per_room",
            Self::ParticipantsPerNode => "participants_per_node",
            Self::RoomsPerNode => "rooms_per_node",
        }
    }

    /// Counts a refusal by this limit.
    pub fn count_refusal(self) {
        metrics::counter!("sfu_limit_refusals_total", "limit" => self.name()).increment(1);
    }

    /// Counts the refusal and makes the error the client is told.
    pub(super) fn refuse(self, code: ErrorCode, message: String) -> RequestError {
        self.count_refusal();
        tracing::info!(limit = self.name(), %message, "refused by a limit");
        RequestError::new(code, message)
    }
}

impl<M: MediaControl> Hub<M> {
    /// Takes a place for one more member of `room` (a participant or a WHEP viewer) on this
    /// node, or says which limit refuses it. One who replaces a member with its identity takes
    /// over that member's place: it is never refused, and the replaced one gives its place back.
    /// While the node drains, nobody new comes in at all.
    pub fn take_place(&self, room: &Room, replacing: bool) -> Result<(), RequestError> {
        self.check_not_draining()?;
        let per_room = self.limits.participants_per_room;
        if !replacing && room.participants.len() + room.viewers.len() >= per_room {
            let message = format!("the room holds {per_room} participants and viewers, its limit");
            return Err(Limit::ParticipantsPerRoom.refuse(ErrorCode::RoomFull, message));
        }
        let per_node = self.limits.participants_per_node;
        let taken = self.members.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |members| {
            (replacing || members < per_node).then_some(members + 1)
        });
        if taken.is_err() {
            let message = format!("the server holds {per_node} participants and viewers, its limit");
            return Err(Limit::ParticipantsPerNode.refuse(ErrorCode::NodeFull, message));
        }
        Ok(())
    }

    /// Gives back the place of a member that left (or never came in after all).
    pub fn give_back_place(&self) {
        let _ = self.members.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |members| members.checked_sub(1));
    }

    /// Participants and viewers on this node, as counted against `participants_per_node`.
    pub fn member_count(&self) -> usize {
        self.members.load(Ordering::SeqCst)
    }

    /// Refuses a room that would be the node's `rooms_per_node + 1`th. `rooms` is the count now.
    pub(super) fn check_new_room(&self, rooms: usize) -> Result<(), RequestError> {
        let limit = self.limits.rooms_per_node;
        if rooms < limit {
            return Ok(());
        }
        Err(Limit::RoomsPerNode.refuse(ErrorCode::NodeFull, format!("the server holds {limit} rooms, its limit")))
    }

    /// Refuses an offer with more media sections than `media_sections_per_offer`.
    pub fn check_sections(&self, sdp: &str) -> Result<(), RequestError> {
        let (sections, limit) = (media_sections(sdp), self.limits.media_sections_per_offer);
        if sections <= limit {
            return Ok(());
        }
        let message = format!("the offer has {sections} media sections; at most {limit} are accepted");
        Err(Limit::MediaSectionsPerOffer.refuse(ErrorCode::TooManySections, message))
    }

    /// Refuses a publisher offer that has too many sections or would publish too many tracks.
    /// An offer lists every track its connection sends, so its sending sections are the tracks
    /// the participant would publish once it is applied.
    pub fn check_publisher_offer(&self, sdp: &str) -> Result<(), RequestError> {
        self.check_sections(sdp)?;
        let (tracks, limit) = (sending_sections(sdp), self.limits.tracks_per_participant);
        if tracks <= limit {
            return Ok(());
        }
        let message = format!("the offer would publish {tracks} tracks; at most {limit} are accepted");
        Err(Limit::TracksPerParticipant.refuse(ErrorCode::TooManyTracks, message))
    }

    /// Counts `more` candidates trickled to a connection that was sent `*trickled` so far, or
    /// refuses them all if that goes past `candidates_per_connection`.
    pub fn count_candidates(&self, trickled: &mut usize, more: usize) -> Result<(), RequestError> {
        let limit = self.limits.candidates_per_connection;
        if trickled.saturating_add(more) > limit {
            let message = format!("this connection was sent {trickled} candidates; at most {limit} are accepted");
            return Err(Limit::CandidatesPerConnection.refuse(ErrorCode::TooManyCandidates, message));
        }
        *trickled += more;
        Ok(())
    }
}

/// The media sections of an SDP: its `m=` lines.
pub fn media_sections(sdp: &str) -> usize {
    sdp.lines().filter(|line| line.starts_with("m=")).count()
}

/// Audio and video sections in which the offerer sends: what the media plane would make tracks
/// of. A section with port 0 is stopped, unless it is `bundle-only` (port 0 by design).
pub fn sending_sections(sdp: &str) -> usize {
    #[derive(Clone, Copy)]
    struct Section {
        media: bool,
        port_zero: bool,
        bundle_only: bool,
        sends: Option<bool>,
    }
    let mut session_sends = true;
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split(' ');
            let media = matches!(words.next(), Some("audio" | "video"));
            let port_zero = words.next() == Some("0");
            sections.push(Section { media, port_zero, bundle_only: false, sends: None });
            continue;
        }
        let sends = match line {
            "a=sendrecv" | "a=sendonly" => Some(true),
            "a=recvonly" | "a=inactive" => Some(false),
            _ => None,
        };
        match sections.last_mut() {
            None => session_sends = sends.unwrap_or(session_sends),
            Some(section) if line == "a=bundle-only" => section.bundle_only = true,
            Some(section) => section.sends = sends.or(section.sends),
        }
    }
    sections.iter().filter(|s| s.media && (!s.port_zero || s.bundle_only) && s.sends.unwrap_or(session_sends)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_that_send_audio_or_video_are_tracks() {
        let sdp = "v=0\r\na=group:BUNDLE 0 1 2 3 4 5\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=inactive\r\n\
            m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=mid:4\r\na=bundle-only\r\na=sendonly\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:5\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:6\r\n";
        assert_eq!(media_sections(sdp), 7);
        // mids 0, 1, 4 (bundle-only) and 6 (no direction: sendrecv).
        assert_eq!(sending_sections(sdp), 4);
        let receive_only_session = "v=0\r\na=recvonly\r\nm=audio 9 RTP/AVP 0\r\nm=video 9 RTP/AVP 96\r\na=sendonly\r\n";
        assert_eq!(sending_sections(receive_only_session), 1);
        assert_eq!((media_sections(""), sending_sections("")), (0, 0));
    }
}
