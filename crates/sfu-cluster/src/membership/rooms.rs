//! The rooms a node holds and the ones it is leaving, with the command in flight for each:
//! at most one `Join` or `Leave` per room, so a slow or paused Redis never piles them up.

use std::collections::BTreeMap;

use sfu_proto::RoomId;

use super::JoinId;
use super::command::{BeatRoom, CmdId, LeaseMember, LeaveOutcome, RoomHolders, RoomSid};
use crate::BootId;

#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinState {
    InFlight(CmdId),
    /// Failed: sent again at the next beat.
    Retry,
    Answered,
}

struct Held {
    /// The record's sid once a join answered; until then the one this node proposes.
    sid: RoomSid,
    join: JoinState,
    /// `join_room` calls not yet answered.
    waiting: Vec<JoinId>,
    /// Other holders, as last heard from Redis.
    peers: Vec<LeaseMember>,
}

struct Leaving {
    /// Proposed again if the room is joined before the leave is done, so a record deleted
    /// meanwhile comes back with the same sid.
    sid: RoomSid,
    /// Whether the next leave sent may delete the record: only the first, decided with what
    /// the node knew when its last participant left. Sent again later (after a failure), that
    /// knowledge may be stale: a linked peer may have taken the room since and let its lease
    /// lapse while cut off from Redis, which this node, no longer in the room, never hears of.
    /// So a retry only ends the own lease, and the record is left to the orphan sweep.
    may_delete: bool,
    /// `None`: failed, sent again at the next beat.
    in_flight: Option<CmdId>,
}

/// What a `join_room` needs.
pub(super) enum JoinStep {
    /// The room is held and verified: answer at once.
    Answer { sid: RoomSid, peers: Vec<LeaseMember> },
    /// The room's join is under way: answer with it.
    Wait,
    /// Send a join proposing this sid.
    Send(RoomSid),
}

pub(super) struct Rooms {
    boot: BootId,
    next_sid: u64,
    held: BTreeMap<RoomId, Held>,
    leaving: BTreeMap<RoomId, Leaving>,
}

fn others(holders: &[LeaseMember], me: &LeaseMember) -> Vec<LeaseMember> {
    holders.iter().filter(|h| *h != me).cloned().collect()
}

impl Rooms {
    pub fn new(boot: &BootId) -> Self {
        Self { boot: boot.clone(), next_sid: 0, held: BTreeMap::new(), leaving: BTreeMap::new() }
    }

    /// A sid no other node proposes: boot ids are unique per run.
    fn mint_sid(&mut self) -> RoomSid {
        self.next_sid += 1;
        RoomSid(format!("RM_{}_{}", self.boot, self.next_sid))
    }

    pub fn join(&mut self, room: RoomId, id: JoinId) -> JoinStep {
        if let Some(held) = self.held.get_mut(&room) {
            if held.join == JoinState::Answered {
                return JoinStep::Answer { sid: held.sid.clone(), peers: held.peers.clone() };
            }
            held.waiting.push(id);
            return JoinStep::Wait;
        }
        let sid = match self.leaving.remove(&room) {
            Some(leaving) => leaving.sid,
            None => self.mint_sid(),
        };
        let held = Held { sid: sid.clone(), join: JoinState::Retry, waiting: vec![id], peers: Vec::new() };
        self.held.insert(room, held);
        JoinStep::Send(sid)
    }

    /// A held room's sid (the record's once answered, else the proposed one) and the other
    /// holders last heard of; `None` if the room is not held.
    pub fn held(&self, room: &RoomId) -> Option<(&RoomSid, &[LeaseMember])> {
        self.held.get(room).map(|h| (&h.sid, h.peers.as_slice()))
    }

    pub fn join_sent(&mut self, room: &RoomId, cmd: CmdId) {
        if let Some(held) = self.held.get_mut(room) {
            held.join = JoinState::InFlight(cmd);
        }
    }

    /// The join `cmd` answered: the `join_room` calls it answers, with the other holders.
    pub fn joined(
        &mut self,
        room: &RoomId,
        cmd: CmdId,
        sid: RoomSid,
        holders: &[LeaseMember],
        me: &LeaseMember,
    ) -> Vec<(JoinId, Vec<LeaseMember>)> {
        let Some(held) = self.held.get_mut(room).filter(|h| h.join == JoinState::InFlight(cmd)) else {
            return Vec::new();
        };
        held.sid = sid;
        held.join = JoinState::Answered;
        held.peers = others(holders, me);
        held.waiting.drain(..).map(|id| (id, held.peers.clone())).collect()
    }

    pub fn join_failed(&mut self, room: &RoomId, cmd: CmdId) {
        if let Some(held) = self.held.get_mut(room).filter(|h| h.join == JoinState::InFlight(cmd)) {
            held.join = JoinState::Retry;
        }
    }

    pub fn joins_to_retry(&self) -> Vec<(RoomId, RoomSid)> {
        self.held.iter().filter(|(_, h)| h.join == JoinState::Retry).map(|(r, h)| (r.clone(), h.sid.clone())).collect()
    }

    /// Moves a held room to the ones being left; false if it was not held.
    pub fn leave(&mut self, room: &RoomId, may_delete: bool) -> bool {
        let Some(held) = self.held.remove(room) else { return false };
        self.leaving.insert(room.clone(), Leaving { sid: held.sid, may_delete, in_flight: None });
        true
    }

    pub fn may_delete(&self, room: &RoomId) -> Option<bool> {
        self.leaving.get(room).map(|l| l.may_delete)
    }

    pub fn leave_sent(&mut self, room: &RoomId, cmd: CmdId) {
        if let Some(leaving) = self.leaving.get_mut(room) {
            leaving.in_flight = Some(cmd);
            leaving.may_delete = false;
        }
    }

    /// The leave `cmd` answered: done, whatever the outcome (a `deferred` record is left to
    /// the orphan sweep, see [`Leaving::may_delete`]).
    pub fn left(&mut self, room: &RoomId, cmd: CmdId, _outcome: LeaveOutcome) {
        if self.leaving.get(room).is_some_and(|l| l.in_flight == Some(cmd)) {
            self.leaving.remove(room);
        }
    }

    pub fn leave_failed(&mut self, room: &RoomId, cmd: CmdId) {
        if let Some(leaving) = self.leaving.get_mut(room).filter(|l| l.in_flight == Some(cmd)) {
            leaving.in_flight = None;
        }
    }

    pub fn leaves_to_retry(&self) -> Vec<RoomId> {
        self.leaving.iter().filter(|(_, l)| l.in_flight.is_none()).map(|(r, _)| r.clone()).collect()
    }

    /// Every held room for a beat; `all`: ask who holds each, else only unanswered joins.
    pub fn for_beat(&self, all: bool) -> Vec<BeatRoom> {
        self.held
            .iter()
            .map(|(room, h)| BeatRoom {
                room: room.clone(),
                sid: h.sid.clone(),
                want_holders: all || h.join != JoinState::Answered,
            })
            .collect()
    }

    /// A beat said who holds a room: its sid (the record's, which after a flush may be another
    /// holder's proposal) and the others, if the room is still held.
    pub fn refreshed(&mut self, holders: &RoomHolders, me: &LeaseMember) -> Option<Vec<LeaseMember>> {
        let held = self.held.get_mut(&holders.room)?;
        held.sid = holders.sid.clone();
        held.peers = others(&holders.holders, me);
        Some(held.peers.clone())
    }

    /// Every room for an unregister: held ones only lose the lease, left ones keep their rule
    /// (a leave not yet sent may delete).
    pub fn for_unregister(&self) -> Vec<(RoomId, bool)> {
        let held = self.held.keys().map(|room| (room.clone(), false));
        held.chain(self.leaving.iter().map(|(room, l)| (room.clone(), l.may_delete))).collect()
    }
}
