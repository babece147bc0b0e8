//! The shape of the interceptors this crate adds to the rtc stack's chain: each one only looks
//! at what is read (keeps, marks or takes out a packet); writes pass untouched, and it has no
//! timers or events of its own.

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// What a read-only interceptor decides.
pub(crate) trait ReadFilter: Send + Sync {
    /// The packet to pass on (perhaps marked), or `None` to take it out of the chain.
    fn on_read(&mut self, packet: TaggedPacket) -> Option<TaggedPacket>;

    /// The stack bound (or unbound) a remote stream to the chain.
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// A [`ReadFilter`] as an interceptor of the chain.
#[derive(Default)]
pub(crate) struct ReadOnly<F> {
    filter: F,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl<F: ReadFilter> Protocol<TaggedPacket, TaggedPacket, ()> for ReadOnly<F> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Some(kept) = self.filter.on_read(msg) {
            self.reads.push_back(kept);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }

    fn handle_event(&mut self, _: ()) -> Result<(), Error> {
        Ok(())
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn handle_timeout(&mut self, _: Instant) -> Result<(), Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl<F: ReadFilter> Interceptor for ReadOnly<F> {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.filter.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.filter.unbind_remote_stream(info);
    }
}
