//! `[rooms]`: how rooms carry media. A room of two (or up to four) may be a mesh, the peers
//! sending to each other and the server relaying only their signaling (docs/topologies.md,
//! "Mesh"); every other room goes through the SFU.

use serde::Deserialize;
use sfu_proto::TopologySetting;
use std::time::Duration;

/// The largest mesh allowed: each peer sends its media once per other peer, so beyond four
/// the uplinks and encoders of ordinary clients give out.
pub const MAX_MESH_PARTICIPANTS: usize = 4;

/// Room topology settings.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// `auto` (a mesh while small enough), `sfu` (never a mesh) or `mesh` (always one, refusing
    /// joiners beyond its size), for rooms whose creator's token has no `topology` claim.
    /// Default `sfu`.
    pub topology: TopologySetting,
    /// The most participants a mesh holds, 2..=4. Default 2.
    pub mesh_max_participants: usize,
    /// How long an `auto` room must stay small enough before it goes back from the SFU to a
    /// mesh, in ms (so a participant rejoining after a glitch does not make it switch twice).
    /// Default 5000.
    pub mesh_hysteresis_ms: u64,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig { topology: TopologySetting::Sfu, mesh_max_participants: 2, mesh_hysteresis_ms: 5000 }
    }
}

impl RoomsConfig {
    /// Why these settings cannot be run with, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if !(2..=MAX_MESH_PARTICIPANTS).contains(&self.mesh_max_participants) {
            return Some(format!(
                "rooms.mesh_max_participants = {} must be between 2 and {MAX_MESH_PARTICIPANTS}",
                self.mesh_max_participants
            ));
        }
        if self.mesh_hysteresis_ms > 600_000 {
            return Some(format!("rooms.mesh_hysteresis_ms = {} must be at most 600000", self.mesh_hysteresis_ms));
        }
        None
    }

    /// The hysteresis as a duration.
    pub fn mesh_hysteresis(&self) -> Duration {
        Duration::from_millis(self.mesh_hysteresis_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_size_is_bounded() {
        assert!(RoomsConfig::default().problem().is_none());
        for bad in [0, 1, 5] {
            let config = RoomsConfig { mesh_max_participants: bad, ..Default::default() };
            assert!(config.problem().unwrap().contains("mesh_max_participants"), "{bad}");
        }
        let slow = RoomsConfig { mesh_hysteresis_ms: 600_001, ..Default::default() };
        assert!(slow.problem().is_some());
    }
}
