//! `[audio]`: how large rooms carry audio. Above `top_n_above` participants each listener is
//! sent only the `top_n` loudest speakers (docs/topologies.md, "Audio for huge rooms"): a room
//! of 300 would otherwise cost every listener 300 audio streams, most of them silence.
//! With `mode = "mix"` the server mixes each room's speakers instead and every listener
//! receives one audio track (docs/topologies.md, "Mixing on the server").

use serde::{Deserialize, Serialize};

/// The most speakers top-N forwards at once. Beyond a handful, voices are noise, and the cost
/// per listener grows again.
pub const MAX_TOP_N: usize = 16;

/// Audio settings of rooms.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// Speakers forwarded to each listener in a large room, the loudest ones (a place, once
    /// taken, is lost only to a clearly louder speaker). 0 = every speaker, whatever the room's
    /// size. Default 3.
    pub top_n: usize,
    /// Top-N applies in rooms of more than this many participants (on every node, for a room
    /// that spans several). Default 12.
    pub top_n_above: usize,
    /// How rooms carry audio: `forward` (each speaker's track, with top-N) or `mix` (one
    /// mixed track per listener; needs a build with the `audio-mix` feature). Default forward.
    pub mode: AudioMode,
}

/// How a room carries its speakers' audio to its listeners.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AudioMode {
    /// Every speaker's track is forwarded (above a size, only the loudest: top-N).
    #[default]
    Forward,
    /// The server decodes, mixes and re-encodes: one track per listener, without their own
    /// voice for the few speaking.
    Mix,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig { top_n: 3, top_n_above: 12, mode: AudioMode::Forward }
    }
}

impl AudioConfig {
    /// Why these settings cannot be run with, if they cannot.
    pub fn problem(&self) -> Option<String> {
        (self.top_n > MAX_TOP_N).then(|| format!("audio.top_n = {} must be at most {MAX_TOP_N} (0 = off)", self.top_n))
    }

    /// Whether a room of `participants` forwards only its loudest speakers.
    pub fn top_n_applies(&self, participants: usize) -> bool {
        self.top_n > 0 && participants > self.top_n_above
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_applies_only_above_the_size_and_when_on() {
        let audio = AudioConfig { top_n: 3, top_n_above: 5, mode: AudioMode::Forward };
        assert!(!audio.top_n_applies(5));
        assert!(audio.top_n_applies(6));
        assert!(!AudioConfig { top_n: 0, top_n_above: 0, mode: AudioMode::Forward }.top_n_applies(100));
        assert!(audio.problem().is_none());
        assert!(
            AudioConfig { top_n: 17, top_n_above: 5, mode: AudioMode::Forward }
                .problem()
                .unwrap()
                .contains("audio.top_n")
        );
    }
}
