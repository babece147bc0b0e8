//! Whether a room is a mesh or goes through the SFU, decided without I/O: the room tells it who
//! joins and leaves and whether anyone who cannot take part in a mesh is present, passing `now`;
//! it answers whether to announce a new topology, and when it wants to be asked again
//! (`poll_timeout`). See docs/topologies.md, "Mesh".

use sfu_proto::{MeshPeer, ParticipantId, TopologyMode, TopologySetting};
use std::time::{Duration, Instant};

/// The rules one room follows, fixed when the room is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyPolicy {
    /// `auto`, `sfu` or `mesh`.
    pub setting: TopologySetting,
    /// The most members of a mesh (2..=4).
    pub max_members: usize,
    /// How long an `auto` room stays small before it goes back to a mesh.
    pub hysteresis: Duration,
}

impl TopologyPolicy {
    /// Never a mesh.
    pub const SFU: TopologyPolicy =
        TopologyPolicy { setting: TopologySetting::Sfu, max_members: 2, hysteresis: Duration::ZERO };
}

/// One room's topology.
#[derive(Clone, Debug)]
pub struct Topology {
    policy: TopologyPolicy,
    mode: TopologyMode,
    /// The members that may take part in a mesh (this node's signaling participants), in join
    /// order: of two peers, the earlier joiner is the impolite one.
    members: Vec<ParticipantId>,
    /// The mesh members (or none, in SFU mode) last announced.
    announced: Vec<ParticipantId>,
    /// The mode last announced (none before the first review).
    announced_mode: Option<TopologyMode>,
    /// Since when an SFU room has been small enough for a mesh.
    small_since: Option<Instant>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new(TopologyPolicy::SFU)
    }
}

impl Topology {
    /// A new room's topology: a mesh from the start unless the policy says `sfu`.
    pub fn new(policy: TopologyPolicy) -> Self {
        let mode = if policy.setting == TopologySetting::Sfu { TopologyMode::Sfu } else { TopologyMode::Mesh };
        Topology { policy, mode, members: Vec::new(), announced: Vec::new(), announced_mode: None, small_since: None }
    }

    pub fn policy(&self) -> TopologyPolicy {
        self.policy
    }

    pub fn mode(&self) -> TopologyMode {
        self.mode
    }

    /// Whether the room's participants are told its topology at all (not in `sfu` rooms, whose
    /// clients need not know about meshes).
    pub fn announces(&self) -> bool {
        self.policy.setting != TopologySetting::Sfu
    }

    /// Whether a forced mesh holds its most members, so `joining` more would be refused.
    pub fn refuses_more(&self) -> bool {
        self.policy.setting == TopologySetting::Mesh && self.members.len() >= self.policy.max_members
    }

    pub fn member_joined(&mut self, id: ParticipantId) {
        if !self.members.contains(&id) {
            self.members.push(id);
        }
    }

    pub fn member_left(&mut self, id: &ParticipantId) {
        self.members.retain(|m| m != id);
    }

    /// Whether `a` and `b` are both members of the mesh as announced.
    pub fn both_in_mesh(&self, a: &ParticipantId, b: &ParticipantId) -> bool {
        self.mode == TopologyMode::Mesh && a != b && self.announced.contains(a) && self.announced.contains(b)
    }

    /// Looks at the room again. `blocked`: someone is present who cannot take part in a mesh (a
    /// WHIP publisher, a WHEP viewer, a participant on another node). True when the topology
    /// changed (the mode, or the members of the mesh): announce it to everyone.
    pub fn review(&mut self, now: Instant, blocked: bool) -> bool {
        let small = !blocked && self.members.len() <= self.policy.max_members;
        self.mode = match (self.policy.setting, self.mode) {
            (TopologySetting::Sfu, _) => TopologyMode::Sfu,
            (TopologySetting::Mesh, _) if small => TopologyMode::Mesh,
            (_, _) if !small => TopologyMode::Sfu,
            (TopologySetting::Auto, TopologyMode::Sfu) => {
                let since = *self.small_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= self.policy.hysteresis {
                    TopologyMode::Mesh
                } else {
                    TopologyMode::Sfu
                }
            }
            (_, mode) => mode,
        };
        if !small || self.mode == TopologyMode::Mesh {
            self.small_since = None;
        }
        let members = if self.mode == TopologyMode::Mesh { self.members.clone() } else { Vec::new() };
        let changed = members != self.announced || self.announced_mode != Some(self.mode);
        self.announced = members;
        self.announced_mode = Some(self.mode);
        changed
    }

    /// When the room wants to be reviewed again: the end of the hysteresis, while it waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.mode == TopologyMode::Sfu).then_some(self.small_since?).map(|since| since + self.policy.hysteresis)
    }

    /// The mesh as `to` should see it: the other members, each with `to`'s role towards it.
    pub fn peers_for(&self, to: &ParticipantId) -> Vec<MeshPeer> {
        let Some(mine) = self.announced.iter().position(|m| m == to) else { return Vec::new() };
        let peer = |(i, id): (usize, &ParticipantId)| MeshPeer { participant_id: id.clone(), polite: mine > i };
        self.announced.iter().enumerate().filter(|(i, _)| *i != mine).map(peer).collect()
    }
}
