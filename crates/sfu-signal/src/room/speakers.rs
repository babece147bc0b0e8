//! Active speakers, room side: the shards' audio levels update each room's ranking; a changed
//! ranking is announced to the room and passed back to the shards for the allocator.

use sfu_proto::{ParticipantId, RoomId, ServerMessage, SpeakerInfo};
use sfu_transport::ConnId;
use std::collections::{HashMap, HashSet};

use super::{Hub, MediaControl, Room};

impl<M: MediaControl> Hub<M> {
    /// Loudness reports from one shard: the loudest track counts for each participant.
    pub async fn on_audio_levels(&self, levels: Vec<(ConnId, f32)>) {
        let mut by_room: HashMap<RoomId, HashMap<ParticipantId, f32>> = HashMap::new();
        for (conn, level) in levels {
            let Some((room, who)) = self.owner_of(conn) else { continue };
            let loudest = by_room.entry(room).or_default().entry(who).or_insert(0.0);
            *loudest = loudest.max(level);
        }
        for (room_id, levels) in by_room {
            let Some(room_ref) = self.room(&room_id) else { continue };
            let mut room = room_ref.lock().await;
            let levels: Vec<(ParticipantId, f32)> =
                levels.into_iter().filter(|(who, _)| room.participants.contains_key(who)).collect();
            self.share_levels(&room, &levels);
            for (who, level) in levels {
                room.set_level(who, level);
            }
            self.announce_speakers(&mut room);
        }
    }

    /// Announces the room's ranking if it changed, and tells the shards who started or stopped
    /// speaking (and, in a large room, whose audio to forward).
    pub(crate) fn announce_speakers(&self, room: &mut Room) {
        self.apply_top_n(room);
        let Some(ranking) = room.speakers.poll_change() else { return };
        let before: HashSet<ParticipantId> = room.announced_speakers.iter().map(|s| s.participant_id.clone()).collect();
        let after: HashSet<ParticipantId> = ranking.iter().map(|(id, _)| id.clone()).collect();
        for id in after.difference(&before) {
            self.media.set_speaking(id, true);
        }
        for id in before.difference(&after) {
            self.media.set_speaking(id, false);
        }
        room.announced_speakers = ranking
            .into_iter()
            .map(|(participant_id, level)| SpeakerInfo { participant_id, level: (level * 1000.0).round() / 1000.0 })
            .collect();
        metrics::counter!("sfu_active_speaker_changes_total").increment(1);
        let message = ServerMessage::ActiveSpeakers { speakers: room.announced_speakers.clone() };
        for p in room.participants.values() {
            p.send(message.clone());
        }
    }
}
