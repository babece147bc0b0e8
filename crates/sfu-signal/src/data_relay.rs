//! Relays participants' data-channel messages to their rooms.
//!
//! The media-event task only dispatches: it checks a message's size and its sender's rate
//! (no lock is taken) and queues it for its room. Each room has its own relay task, which takes
//! that room's lock, wraps the message in its JSON envelope and sends it to everyone else. One
//! room's flood therefore waits behind its own lock and queue, never another room's. Refused
//! messages are counted in `sfu_data_messages_refused_total{reason}` and the sender is told with
//! `data_refused` (docs/protocol.md, "Data messages").

use bytes::Bytes;
use sfu_core::DataRateLimiter;
use sfu_proto::{DataRefusal, ParticipantId, RoomId, ServerMessage};
use sfu_transport::{ConnId, DATA_MAX_MESSAGE_BYTES};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::config::Limits;
use crate::data_envelope::envelope;
use crate::room::{Hub, MediaControl};

/// Messages waiting for one room's relay. With every sender held to its rate this fills only
/// when many senders of one room send at once; what does not fit is refused as `rate_limited`.
const ROOM_QUEUE: usize = 256;

/// A flooding sender is told of its refusals at most this often, so the notices cannot flood
/// its signaling socket in turn. Every refusal is counted.
const NOTICE_INTERVAL: Duration = Duration::from_millis(250);

/// A room's relay that has had nothing to do this long looks whether its room still exists, so
/// closed rooms leave no task behind even when no more data arrives.
pub(crate) const RELAY_IDLE: Duration = Duration::from_secs(30);

/// Dispatches after this many messages also drop the relays of rooms that have closed and the
/// rate state of connections that have gone.
const PRUNE_EVERY: u64 = 1024;

enum Job {
    Relay { sender: ParticipantId, text: bool, payload: Bytes },
    Refused { sender: ParticipantId, reason: DataRefusal, bytes: usize },
}

struct SenderRate {
    limiter: DataRateLimiter,
    last_notice: Option<Instant>,
}

/// The dispatcher's state; lives in the media-event task.
pub struct DataRelay {
    messages_per_second: u32,
    bytes_per_second: u32,
    rooms: HashMap<RoomId, mpsc::Sender<Job>>,
    senders: HashMap<ConnId, SenderRate>,
    dispatched: u64,
}

impl DataRelay {
    pub fn new(limits: &Limits) -> Self {
        DataRelay {
            messages_per_second: limits.data_messages_per_second,
            bytes_per_second: limits.data_bytes_per_second,
            rooms: HashMap::new(),
            senders: HashMap::new(),
            dispatched: 0,
        }
    }

    /// A connection has gone: its rate state goes too.
    pub fn forget(&mut self, conn: ConnId) {
        self.senders.remove(&conn);
    }

    /// Checks one message from `conn` and queues it (or its refusal) for its room's relay.
    pub fn dispatch<M: MediaControl>(&mut self, hub: &Arc<Hub<M>>, conn: ConnId, text: bool, payload: Bytes) {
        self.dispatched += 1;
        if self.dispatched.is_multiple_of(PRUNE_EVERY) {
            self.prune(hub);
        }
        let Some((room_id, sender)) = hub.owner_of(conn) else { return };
        let now = Instant::now();
        let bytes = payload.len();
        let (per_second, bytes_per_second) = (self.messages_per_second, self.bytes_per_second);
        let rate = self.senders.entry(conn).or_insert_with(|| SenderRate {
            limiter: DataRateLimiter::new(per_second, bytes_per_second),
            last_notice: None,
        });
        let (reason, sender) = if bytes > DATA_MAX_MESSAGE_BYTES {
            // A browser refuses to send this itself; another client may not.
            (DataRefusal::TooLarge, sender)
        } else if rate.limiter.allow(bytes, now) {
            match self.enqueue(hub, &room_id, Job::Relay { sender, text, payload }) {
                Ok(()) => return,
                // The room's relay is behind (its queue is full): refused like a flood.
                Err(Job::Relay { sender, .. } | Job::Refused { sender, .. }) => (DataRefusal::RateLimited, sender),
            }
        } else {
            (DataRefusal::RateLimited, sender)
        };
        refused(reason);
        let Some(rate) = self.senders.get_mut(&conn) else { return };
        if rate.last_notice.is_some_and(|t| now.duration_since(t) < NOTICE_INTERVAL) {
            return;
        }
        rate.last_notice = Some(now);
        let notice = Job::Refused { sender, reason, bytes };
        if let Err(Job::Refused { sender, .. } | Job::Relay { sender, .. }) = self.enqueue(hub, &room_id, notice) {
            // Behind the same full queue the notice would come too late, or never: it goes
            // straight to the sender (at most once per NOTICE_INTERVAL, so a task at most that
            // often per sender).
            tokio::spawn(notify(hub.clone(), room_id, sender, reason, bytes));
        }
    }

    /// Queues `job` for its room's relay, starting one if the room has none running. Gives the
    /// job back when the room's relay is behind: its queue is full.
    fn enqueue<M: MediaControl>(&mut self, hub: &Arc<Hub<M>>, room_id: &RoomId, job: Job) -> Result<(), Job> {
        let queue = match self.rooms.get(room_id) {
            Some(queue) if !queue.is_closed() => queue.clone(),
            _ => self.start_relay(hub, room_id.clone()),
        };
        let job = match queue.try_send(job) {
            Ok(()) => return Ok(()),
            // Its relay ended just now (its room looked closed): start another.
            Err(mpsc::error::TrySendError::Closed(job)) => job,
            Err(mpsc::error::TrySendError::Full(job)) => return Err(job),
        };
        self.start_relay(hub, room_id.clone()).try_send(job).map_err(|e| e.into_inner())
    }

    fn start_relay<M: MediaControl>(&mut self, hub: &Arc<Hub<M>>, room_id: RoomId) -> mpsc::Sender<Job> {
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        tokio::spawn(relay_room(hub.clone(), room_id.clone(), rx));
        self.rooms.insert(room_id, tx.clone());
        tx
    }

    /// Rooms with a relay task running.
    #[cfg(test)]
    pub fn running_relays(&self) -> usize {
        self.rooms.values().filter(|queue| !queue.is_closed()).count()
    }

    fn prune<M: MediaControl>(&mut self, hub: &Hub<M>) {
        // Dropping a room's queue ends its relay task.
        self.rooms.retain(|id, queue| !queue.is_closed() && hub.room(id).is_some());
        self.senders.retain(|conn, _| hub.owner_of(*conn).is_some());
    }
}

fn refused(reason: DataRefusal) {
    metrics::counter!("sfu_data_messages_refused_total", "reason" => reason.as_str()).increment(1);
}

/// Tells `sender` its message was refused, taking the room's lock on its own.
async fn notify<M: MediaControl>(
    hub: Arc<Hub<M>>,
    room_id: RoomId,
    sender: ParticipantId,
    reason: DataRefusal,
    bytes: usize,
) {
    let Some(room_ref) = hub.room(&room_id) else { return };
    let room = room_ref.lock().await;
    if let Some(p) = room.participants.get(&sender) {
        p.send(ServerMessage::DataRefused { reason, bytes: bytes as u64 });
    }
}

/// One room's relay: delivers its messages in order, taking only its own room's lock. Ends when
/// the room has closed (noticed at its next message, or after [`RELAY_IDLE`] without one) or
/// the dispatcher drops the queue; the dispatcher starts a new one for the room's next message.
async fn relay_room<M: MediaControl>(hub: Arc<Hub<M>>, room_id: RoomId, mut jobs: mpsc::Receiver<Job>) {
    loop {
        let job = match tokio::time::timeout(RELAY_IDLE, jobs.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_idle) if hub.room(&room_id).is_none() => return,
            Err(_idle) => continue,
        };
        let Some(room_ref) = hub.room(&room_id) else { return };
        let room = room_ref.lock().await;
        match job {
            Job::Refused { sender, reason, bytes } => {
                if let Some(p) = room.participants.get(&sender) {
                    p.send(ServerMessage::DataRefused { reason, bytes: bytes as u64 });
                }
            }
            Job::Relay { sender, text, payload } => {
                let Some(from) = room.participants.get(&sender) else { continue };
                if !from.grants.publish_data {
                    metrics::counter!("sfu_data_messages_rejected_total").increment(1);
                    continue;
                }
                let Some(envelope) = envelope(from.identity.as_str(), from.id.as_str(), text, &payload) else {
                    refused(DataRefusal::TooLarge);
                    from.send(ServerMessage::DataRefused {
                        reason: DataRefusal::TooLarge,
                        bytes: payload.len() as u64,
                    });
                    continue;
                };
                for p in room.participants.values().filter(|p| p.id != sender) {
                    hub.media.send_data(p.publisher_conn, true, envelope.clone());
                }
                hub.share_data(&room, &sender, text, &payload);
                metrics::counter!("sfu_data_messages_total").increment(1);
            }
        }
    }
}
