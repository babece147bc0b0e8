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
    /// The mesh members (or none, in SFU mode) last announced, each with the number of the
    /// announcement that brought it into the mesh it is in now.
    announced: Vec<(ParticipantId, u64)>,
    /// How many changes were announced: numbers the connections between mesh members.
    announcements: u64,
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
        Topology {
            policy,
            mode,
            members: Vec::new(),
            announced: Vec::new(),
            announcements: 0,
            announced_mode: None,
            small_since: None,
        }
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
        self.connection(a, b).is_some()
    }

    /// The number of the connection between mesh members `a` and `b` as announced (the later
    /// of the announcements that brought each into the mesh), or `None` when they are not both
    /// members.
    pub fn connection(&self, a: &ParticipantId, b: &ParticipantId) -> Option<u64> {
        if self.mode != TopologyMode::Mesh || a == b {
            return None;
        }
        let since = |id: &ParticipantId| self.announced.iter().find(|(m, _)| m == id).map(|(_, n)| *n);
        Some(since(a)?.max(since(b)?))
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
        let unchanged = members.len() == self.announced.len()
            && members.iter().zip(&self.announced).all(|(m, (a, _))| m == a)
            && self.announced_mode == Some(self.mode);
        if unchanged {
            return false;
        }
        self.announcements += 1;
        // A member already in the mesh keeps its number (its connections go on); a newcomer,
        // or everyone after an SFU spell, gets this announcement's.
        let number = self.announcements;
        let previous = std::mem::take(&mut self.announced);
        self.announced = members
            .into_iter()
            .map(|m| {
                let kept = previous.iter().find(|(p, _)| *p == m).map(|(_, n)| *n);
                (m, kept.unwrap_or(number))
            })
            .collect();
        self.announced_mode = Some(self.mode);
        true
    }

    /// When the room wants to be reviewed again: the end of the hysteresis, while it waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.mode == TopologyMode::Sfu).then_some(self.small_since?).map(|since| since + self.policy.hysteresis)
    }

    /// The mesh as `to` should see it: the other members, each with `to`'s role towards it.
    pub fn peers_for(&self, to: &ParticipantId) -> Vec<MeshPeer> {
        let Some(mine) = self.announced.iter().position(|(m, _)| m == to) else { return Vec::new() };
        let my_since = self.announced[mine].1;
        let peer = |(i, (id, since)): (usize, &(ParticipantId, u64))| MeshPeer {
            participant_id: id.clone(),
            polite: mine > i,
            connection: my_since.max(*since),
        };
        self.announced.iter().enumerate().filter(|(i, _)| *i != mine).map(peer).collect()
    }
}
