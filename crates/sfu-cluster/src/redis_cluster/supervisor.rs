//! The supervisor task: the one owner of the `Membership` core and the Redis link. Each turn it
//! feeds the core what happened (a handle's request, a command's outcome, time passing) with
//! `Instant::now()`, sends every command the core polls as its own task (a beat may run while a
//! join is in flight), reports exactly one outcome per command, publishes the events, and
//! sleeps until the core's next deadline or a join's answer is due.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use redis::Client;
use sfu_proto::RoomId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{self, JoinSet};

use super::exec::{self, Failure, FailureKind};
use super::link::{CONNECTION_TIMEOUT, Link, RESPONSE_TIMEOUT};
use super::shared::{EventSink, Shared};
use super::{JOIN_WAIT, meter};
use crate::membership::{CmdId, JoinId, LeaseMember, Membership, MembershipEvent, RedisCmd, Reply, RoomSid};
use crate::{NodeLoad, NodeRecord, NodeState, RoomLease};

/// What a handle asks of the supervisor.
pub(super) enum Request {
    Load(NodeLoad),
    State(NodeState),
    Join { room: RoomId, reply: oneshot::Sender<RoomLease> },
    Leave { room: RoomId, linked_peers_hold_it: bool },
    Unregister { reply: oneshot::Sender<()> },
}

/// A `join_room` waiting for Redis's answer, until `deadline`.
struct JoinWaiter {
    room: RoomId,
    reply: oneshot::Sender<RoomLease>,
    deadline: Instant,
    /// The sid proposed and peers known when asked, in case the room is left before the answer.
    proposed: (RoomSid, Vec<LeaseMember>),
}

/// A command's outcome: which command, on which connection, and what came back.
type Outcome = (CmdId, Option<u64>, Result<Reply, Failure>);

pub(super) struct Supervisor {
    core: Membership,
    link: Link,
    inbox: mpsc::UnboundedReceiver<Request>,
    shared: Arc<Shared>,
    events: EventSink,
    running: JoinSet<Outcome>,
    /// The command of each running task, to answer for one that panicked.
    tasks: HashMap<task::Id, (CmdId, Option<u64>)>,
    joins: BTreeMap<JoinId, JoinWaiter>,
    unregistering: Vec<oneshot::Sender<()>>,
    unregistered: bool,
}

impl Supervisor {
    pub fn new(
        me: NodeRecord,
        client: Client,
        inbox: mpsc::UnboundedReceiver<Request>,
        shared: Arc<Shared>,
        events: mpsc::Sender<MembershipEvent>,
        now: Instant,
    ) -> Self {
        meter::health(crate::Health::Degraded);
        Self {
            core: Membership::new(me, now),
            link: Link::new(client, now),
            inbox,
            shared,
            events: EventSink(events),
            running: JoinSet::new(),
            tasks: HashMap::new(),
            joins: BTreeMap::new(),
            unregistering: Vec::new(),
            unregistered: false,
        }
    }

    /// Runs until every handle is gone.
    pub async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.core.handle_timeout(now);
            self.send_commands();
            self.publish_events();
            self.answer_late_joins(now);
            let wake = self.joins.values().map(|w| w.deadline).fold(self.core.poll_timeout(), Instant::min);
            tokio::select! {
                request = self.inbox.recv() => match request {
                    Some(request) => self.on_request(request, Instant::now()),
                    None => break,
                },
                Some(done) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    let (id, generation, result) = match done {
                        Ok((task, outcome)) => {
                            self.tasks.remove(&task);
                            outcome
                        }
                        Err(e) => {
                            let (id, generation) = self.tasks.remove(&e.id()).expect("every task is recorded");
                            (id, generation, Err(Failure::new(FailureKind::Error, format!("command task ended: {e}"))))
                        }
                    };
                    self.on_outcome(id, generation, result, Instant::now());
                }
                () = self.link.progress() => {}
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        tracing::debug!("cluster: every handle dropped; supervisor stops");
    }

    fn on_request(&mut self, request: Request, now: Instant) {
        match request {
            Request::Load(load) => self.core.set_load(load),
            Request::State(state) => self.core.set_state(state, now),
            Request::Join { room, reply } => {
                let id = self.core.join_room(room.clone(), now);
                let proposed = self.core.room(&room).expect("a room just joined is held");
                self.joins.insert(id, JoinWaiter { room, reply, deadline: now + JOIN_WAIT, proposed });
            }
            Request::Leave { room, linked_peers_hold_it } => {
                self.core.leave_room(&room, linked_peers_hold_it, now);
                self.shared.snapshot.write().rooms.remove(&room);
            }
            Request::Unregister { reply } => {
                if self.unregistered {
                    let _ = reply.send(());
                } else {
                    self.unregistering.push(reply);
                    self.core.unregister(now);
                }
            }
        }
    }

    /// Every command the core polled, each as its own task. Without a connection it fails at
    /// once (still through the task set, so every outcome takes the same way back).
    fn send_commands(&mut self) {
        while let Some((id, cmd)) = self.core.poll_command() {
            let manager = self.link.manager();
            let generation = manager.as_ref().map(|(_, g)| *g);
            let handle = self.running.spawn(async move {
                let result = match manager {
                    Some((manager, _)) => run_bounded(manager, cmd).await,
                    None => Err(Failure::new(FailureKind::Connection, "not connected")),
                };
                (id, generation, result)
            });
            self.tasks.insert(handle.id(), (id, generation));
        }
    }

    fn on_outcome(&mut self, id: CmdId, generation: Option<u64>, result: Result<Reply, Failure>, now: Instant) {
        if let Err(failure) = &result {
            meter::failure(failure.kind.label());
        }
        self.link.command_ended(generation, result.as_ref().err(), now);
        self.core.handle_reply(id, result.map_err(|f| f.to_core()), now);
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            match &event {
                MembershipEvent::Joined { id, room, sid, peers } => {
                    self.shared.snapshot.write().rooms.insert(room.clone(), peers.clone());
                    if let Some(waiter) = self.joins.remove(id) {
                        let lease = RoomLease { sid: sid.clone(), peers: peers.clone(), verified: true };
                        if waiter.reply.send(lease).is_ok() {
                            continue;
                        }
                    }
                }
                MembershipEvent::RoomPeers { room, peers, .. } => {
                    self.shared.snapshot.write().rooms.insert(room.clone(), peers.clone());
                }
                MembershipEvent::Nodes { nodes, redis_ms } => {
                    let mut snapshot = self.shared.snapshot.write();
                    snapshot.nodes = nodes.clone();
                    snapshot.redis_offset_ms = Some(*redis_ms as i64 - wall_clock_ms());
                    meter::nodes(nodes.len() + 1);
                }
                MembershipEvent::RegistryRebuilt => {
                    meter::registry_rebuilt();
                    tracing::warn!("cluster: Redis had lost this node's key (flushed or restarted); rebuilt");
                }
                MembershipEvent::Health(health) => {
                    self.shared.snapshot.write().health = *health;
                    meter::health(*health);
                    tracing::info!(?health, "cluster: Redis health");
                }
                MembershipEvent::Unregistered => {
                    self.unregistered = true;
                    for reply in self.unregistering.drain(..) {
                        let _ = reply.send(());
                    }
                }
            }
            self.events.send(event);
        }
    }

    /// Joins Redis has not answered within [`JOIN_WAIT`] start unverified; their answer will
    /// go to the event channel.
    fn answer_late_joins(&mut self, now: Instant) {
        let late: Vec<JoinId> = self.joins.iter().filter(|(_, w)| w.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            let Some(waiter) = self.joins.remove(&id) else { continue };
            let (sid, peers) = self.core.room(&waiter.room).unwrap_or(waiter.proposed);
            let _ = waiter.reply.send(RoomLease { sid, peers, verified: false });
        }
    }
}

/// One command, bounded by the supervisor's own deadline so that it always reports: the
/// manager's response timeout bounds an answer, not the wait for a reconnection under way.
async fn run_bounded(manager: redis::aio::ConnectionManager, cmd: RedisCmd) -> Result<Reply, Failure> {
    let deadline = RESPONSE_TIMEOUT + CONNECTION_TIMEOUT;
    match tokio::time::timeout(deadline, exec::execute(manager, &cmd)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::deadline(deadline)),
    }
}

fn wall_clock_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
