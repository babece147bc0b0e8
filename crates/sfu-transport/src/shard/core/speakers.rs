//! Active speakers, shard side: the loudness of the audio tracks published here goes to the
//! control plane at a fixed interval (it ranks each room), and the ranking comes back as the set
//! of speaking participants, whose video the allocator favours.

use sfu_proto::ParticipantId;

use super::ShardCore;
use crate::api::MediaEvent;

impl ShardCore {
    /// Closes the audio-level window of every audio track published here and reports the
    /// loudness of those that are audible, or were at the last report.
    pub(super) fn report_audio_levels(&mut self) {
        let mut levels = Vec::new();
        for published in self.published.values_mut() {
            let conn = published.conn();
            let Some(tap) = published.audio_level.as_mut() else { continue };
            let level = tap.meter.take_window();
            if (level > 0.0 || tap.audible)
                && let Some(conn) = conn
            {
                levels.push((conn, level));
            }
            tap.audible = level > 0.0;
        }
        if !levels.is_empty() {
            self.emit(MediaEvent::AudioLevels { levels });
        }
    }

    /// The control plane's ranking changed: `participant` started or stopped speaking.
    pub(super) fn set_speaking(&mut self, participant: ParticipantId, speaking: bool) {
        if speaking {
            self.speaking.insert(participant);
        } else {
            self.speaking.remove(&participant);
        }
    }
}
