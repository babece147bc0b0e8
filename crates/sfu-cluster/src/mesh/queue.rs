//! One peer's outgoing queue: encoded messages from [`super::MeshHandle::send`] to the link's
//! writer, bounded by [`QUEUE_MAX_FRAMES`] and [`QUEUE_MAX_BYTES`]. A peer that cannot keep up
//! is not waited for: the queue overflows, the link is reset and the application resyncs after
//! the next `PeerUp`, so a slow peer never blocks rooms or grows memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use super::{QUEUE_MAX_BYTES, QUEUE_MAX_FRAMES};

/// The sending end, kept in the shared link map.
pub(super) struct OutQueue {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    state: Arc<QueueState>,
}

/// The writer's end.
pub(super) struct QueueRx {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    state: Arc<QueueState>,
}

/// Tells the link that a push overflowed.
pub(super) struct OverflowSignal(Arc<QueueState>);

struct QueueState {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    overflowed: Notify,
}

/// The queue is full; the link is to be reset.
#[derive(Debug)]
pub(super) struct Overflow;

pub(super) fn channel() -> (OutQueue, QueueRx, OverflowSignal) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state =
        Arc::new(QueueState { frames: AtomicUsize::new(0), bytes: AtomicUsize::new(0), overflowed: Notify::new() });
    (OutQueue { tx, state: state.clone() }, QueueRx { rx, state: state.clone() }, OverflowSignal(state))
}

impl OutQueue {
    /// Queues one message, or reports the overflow (and tells the writer's side, which
    /// closes the link). Called under the link map's lock, so the bound is exact.
    pub(super) fn push(&self, message: Vec<u8>) -> Result<(), Overflow> {
        let frames = self.state.frames.load(Ordering::Acquire) + 1;
        let bytes = self.state.bytes.load(Ordering::Acquire) + message.len();
        if frames > QUEUE_MAX_FRAMES || bytes > QUEUE_MAX_BYTES {
            self.state.overflowed.notify_one();
            return Err(Overflow);
        }
        self.state.frames.fetch_add(1, Ordering::AcqRel);
        self.state.bytes.fetch_add(message.len(), Ordering::AcqRel);
        // The writer gone means the link is closing; its PeerDown follows.
        let _ = self.tx.send(message);
        Ok(())
    }
}

impl QueueRx {
    /// The next message, once queued; `None` once the sending end is gone.
    pub(super) async fn recv(&mut self) -> Option<Vec<u8>> {
        let message = self.rx.recv().await?;
        self.state.frames.fetch_sub(1, Ordering::AcqRel);
        self.state.bytes.fetch_sub(message.len(), Ordering::AcqRel);
        Some(message)
    }
}

impl OverflowSignal {
    /// Resolves once a push overflowed.
    pub(super) async fn overflowed(&self) {
        self.0.overflowed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_is_bounded_by_frames_and_by_bytes() {
        let (tx, mut rx, overflow) = channel();
        for _ in 0..QUEUE_MAX_FRAMES {
            tx.push(vec![0]).unwrap();
        }
        assert!(tx.push(vec![0]).is_err());
        // The overflow is signalled to the writer's side.
        tokio::time::timeout(std::time::Duration::from_secs(5), overflow.overflowed()).await.unwrap();
        // Taking one makes room for one.
        assert_eq!(rx.recv().await, Some(vec![0]));
        tx.push(vec![1]).unwrap();

        let (tx, mut rx, _) = channel();
        tx.push(vec![0; QUEUE_MAX_BYTES - 10]).unwrap();
        assert!(tx.push(vec![0; 11]).is_err());
        tx.push(vec![0; 10]).unwrap();
        assert_eq!(rx.recv().await.map(|m| m.len()), Some(QUEUE_MAX_BYTES - 10));
        tx.push(vec![0; 1000]).unwrap();
    }
}
