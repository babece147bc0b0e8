//! A signaling socket's outgoing queue, bounded in messages and bytes so that a client that stops
//! reading cannot grow the server's memory. Room code never waits on it: a send that does not fit
//! drops the message and marks the queue overflowed, and the socket's writer then closes the
//! socket with `too_slow` (the client may resume, which sends it a fresh snapshot of the room).

use sfu_proto::{CloseCode, ServerMessage};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

/// Messages a socket may have waiting. A client that keeps up has a handful at most: one per room
/// event, and a join's burst (welcome, offer, candidates) is a few dozen. 256 behind means it has
/// stopped reading (the kernel's socket buffers, ahead of this queue, are full too).
pub const MAX_QUEUED_MESSAGES: usize = 256;
/// Serialized bytes a socket may have waiting: room for the largest messages (a `joined` listing
/// a big room, an offer with many tracks are tens to hundreds of KiB) while keeping a thousand
/// stalled sockets to about a GiB at worst.
pub const MAX_QUEUED_BYTES: usize = 1 << 20;

/// What the room sends to a participant's WebSocket writer.
#[derive(Debug)]
pub enum Outgoing {
    Message(ServerMessage),
    /// Close the socket with this code and reason.
    Close(CloseCode, String),
}

/// What the writer takes from the queue: messages already serialized, so their size is counted
/// once, when they are queued.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Close(CloseCode, String),
}

#[derive(Default)]
struct Shared {
    bytes: AtomicUsize,
    overflowed: AtomicBool,
    wake: Notify,
    /// Told each time the writer takes a message, for a reader waiting for room.
    drained: Notify,
}

/// The sending side, held by the room and the socket's reader.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

/// The receiving side, held by the socket's writer.
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
}

/// Resolves once the queue overflowed; the writer waits on it while it waits on the socket.
#[derive(Clone)]
pub struct Overflow(Arc<Shared>);

pub fn outbox() -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_MESSAGES);
    let shared = Arc::new(Shared::default());
    (Outbox { tx, shared: shared.clone() }, OutboxReceiver { rx, shared })
}

impl Outbox {
    /// Queues without waiting. False if the message was dropped: the socket is gone, or the
    /// client fell too far behind (then the writer is told to close the socket).
    pub fn send(&self, out: Outgoing) -> bool {
        if self.shared.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        let frame = match out {
            Outgoing::Message(m) => match serde_json::to_string(&m) {
                Ok(text) => Frame::Text(text),
                Err(_) => return false,
            },
            Outgoing::Close(code, reason) => Frame::Close(code, reason),
        };
        let size = frame_bytes(&frame);
        if self.shared.bytes.fetch_add(size, Ordering::Relaxed) + size > MAX_QUEUED_BYTES {
            self.shared.bytes.fetch_sub(size, Ordering::Relaxed);
            self.overflow();
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(e) => {
                self.shared.bytes.fetch_sub(size, Ordering::Relaxed);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.overflow();
                }
                false
            }
        }
    }

    /// Waits until half the queue is free, so that replies to another request from the client
    /// fit. The socket's reader waits on this before reading the next request: a client that
    /// sends faster than it reads is held back rather than overflowing its own queue, and only
    /// what the room sends it can overflow it. Returns at once once the queue overflowed or closed.
    pub async fn room_for_replies(&self) {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let roomy = self.tx.capacity() >= MAX_QUEUED_MESSAGES / 2
                && self.shared.bytes.load(Ordering::Relaxed) <= MAX_QUEUED_BYTES / 2;
            if roomy || self.tx.is_closed() || self.shared.overflowed.load(Ordering::Relaxed) {
                return;
            }
            drained.await;
        }
    }

    fn overflow(&self) {
        if !self.shared.overflowed.swap(true, Ordering::Relaxed) {
            self.shared.wake.notify_one();
        }
    }
}

impl OutboxReceiver {
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.shared.bytes.fetch_sub(frame_bytes(&frame), Ordering::Relaxed);
        self.shared.drained.notify_waiters();
        Some(frame)
    }

    pub fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.shared.bytes.fetch_sub(frame_bytes(&frame), Ordering::Relaxed);
        self.shared.drained.notify_waiters();
        Some(frame)
    }

    pub fn overflow(&self) -> Overflow {
        Overflow(self.shared.clone())
    }

    /// Serialized bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

impl Overflow {
    pub async fn wait(&self) {
        // A notification sent before anyone waits is kept (`notify_one`), so none is missed.
        while !self.0.overflowed.load(Ordering::Relaxed) {
            self.0.wake.notified().await;
        }
    }

    pub fn happened(&self) -> bool {
        self.0.overflowed.load(Ordering::Relaxed)
    }
}

fn frame_bytes(frame: &Frame) -> usize {
    match frame {
        Frame::Text(text) => text.len(),
        Frame::Close(_, reason) => reason.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(id: u64) -> Outgoing {
        Outgoing::Message(ServerMessage::Pong { id })
    }

    #[test]
    fn fills_at_the_message_bound_and_frees_on_drain() {
        let (tx, mut rx) = outbox();
        for i in 0..MAX_QUEUED_MESSAGES as u64 {
            assert!(tx.send(pong(i)), "message {i} fits");
        }
        assert!(!rx.overflow().happened());
        assert!(!tx.send(pong(0)), "one past the bound is dropped");
        assert!(rx.overflow().happened());
        // The queued messages are still delivered, in order, and their bytes released.
        let mut n = 0;
        while let Some(Frame::Text(text)) = rx.try_recv() {
            assert_eq!(text, format!(r#"{{"type":"pong","id":{n}}}"#));
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED_MESSAGES);
        assert_eq!(rx.queued_bytes(), 0);
        // Once overflowed, the socket is to be closed: nothing more is queued.
        assert!(!tx.send(pong(1)));
    }

    #[test]
    fn fills_at_the_byte_bound() {
        let (tx, mut rx) = outbox();
        let big = |n: usize| Outgoing::Close(CloseCode::Left, "x".repeat(n));
        assert!(tx.send(big(MAX_QUEUED_BYTES / 2)));
        assert!(tx.send(big(MAX_QUEUED_BYTES / 2)));
        assert_eq!(rx.queued_bytes(), MAX_QUEUED_BYTES);
        assert!(!tx.send(big(1)));
        assert!(rx.overflow().happened());
        assert!(rx.try_recv().is_some() && rx.try_recv().is_some());
        assert_eq!(rx.queued_bytes(), 0);
    }

    #[test]
    fn draining_makes_room_before_an_overflow() {
        let (tx, mut rx) = outbox();
        for round in 0..3 {
            for i in 0..MAX_QUEUED_MESSAGES as u64 {
                assert!(tx.send(pong(i)), "round {round}, message {i}");
            }
            while rx.try_recv().is_some() {}
        }
        assert!(!rx.overflow().happened());
        assert_eq!(rx.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_reader_waits_for_half_the_queue_to_drain() {
        let (tx, mut rx) = outbox();
        for i in 0..MAX_QUEUED_MESSAGES as u64 - 10 {
            assert!(tx.send(pong(i)));
        }
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.room_for_replies().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room while nearly full");
        for _ in 0..MAX_QUEUED_MESSAGES / 2 {
            rx.recv().await.unwrap();
        }
        let wait = std::time::Duration::from_secs(5);
        tokio::time::timeout(wait, waiting).await.expect("room after draining").unwrap();
        tokio::time::timeout(wait, tx.room_for_replies()).await.expect("still room");
    }

    #[tokio::test]
    async fn the_writer_is_woken_by_an_overflow() {
        let (tx, rx) = outbox();
        let overflow = rx.overflow();
        let waiter = tokio::spawn(async move { overflow.wait().await });
        for i in 0..=MAX_QUEUED_MESSAGES as u64 {
            tx.send(pong(i));
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        drop(rx);
        assert!(!tx.send(pong(0)), "a closed socket takes nothing");
    }
}
