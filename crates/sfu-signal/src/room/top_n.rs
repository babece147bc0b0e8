//! Top-N audio, room side (docs/topologies.md, "Audio for huge rooms"): in a room larger than
//! `audio.top_n_above`, only the speakers holding one of the `audio.top_n` places are
//! forwarded. The places follow the levels every node already shares (sfu-core's
//! `LoudestSpeakers`); the shards are told per audio track, and a new subscription starts with
//! its track's state (`DownTrackSpec::among_loudest`).

use sfu_proto::ParticipantId;
use std::collections::HashSet;

use super::{Hub, MediaControl, Room};

impl<M: MediaControl> Hub<M> {
    /// Brings the shards in line with the room's places: whose audio is held back now, and whose
    /// is forwarded again.
    pub(crate) fn apply_top_n(&self, room: &mut Room) {
        room.loudest.poll_change();
        room.top_n_applies = self.audio_config().top_n_applies(room.size());
        let publishers = room.audio_track_keys();
        let held: HashSet<ParticipantId> =
            publishers.iter().filter(|(who, _)| !room.audio_forwarded(who)).map(|(who, _)| who.clone()).collect();
        for (who, keys) in &publishers {
            let hold = held.contains(who);
            if hold == room.held_back.contains(who) {
                continue;
            }
            for key in keys {
                self.media.set_among_loudest(*key, !hold);
            }
        }
        if held != room.held_back {
            tracing::debug!(room = %room.id.escaped(), held = held.len(), "top-N audio changed");
            metrics::counter!("sfu_top_n_changes_total").increment(1);
        }
        room.held_back = held;
    }
}
