//! A relayed track's two control planes, as the harness plays them: what one node's shards
//! report about the track becomes a command for the other node's shard.

use crate::TrackKey;
use crate::api::MediaEvent;
use crate::relay::LinkId;
use crate::shard::command::Command;

/// One relayed track whose control planes pass on what the shards say about it: the receiving
/// node's `RelayDemand` becomes `SetRelayLayers` on the publisher's shard, the publisher's
/// node's `LayersActive` becomes `RelayLayersActive` on the relay track's shard.
pub(crate) struct RelayGlue {
    pub link: LinkId,
    pub key: TrackKey,
    pub publisher_shard: usize,
    pub relay_key: TrackKey,
    pub receiver_shard: usize,
}

impl RelayGlue {
    /// What the control planes do when `shard` reports `event`: a command for a shard.
    pub fn on_event(&self, shard: usize, event: &MediaEvent) -> Option<(usize, Command)> {
        match *event {
            MediaEvent::RelayDemand { key, used, wanted } if shard == self.receiver_shard && key == self.relay_key => {
                let command = Command::SetRelayLayers { key: self.key, link: self.link, used, wanted };
                Some((self.publisher_shard, command))
            }
            MediaEvent::LayersActive { key, layers } if shard == self.publisher_shard && key == self.key => {
                Some((self.receiver_shard, Command::RelayLayersActive { key: self.relay_key, layers }))
            }
            _ => None,
        }
    }
}
