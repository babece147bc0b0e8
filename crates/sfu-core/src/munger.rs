//! Rewrites sequence numbers and timestamps so a subscriber sees one continuous RTP stream while
//! the router feeds it from several input streams in turn (simulcast layers, publisher restarts).
//!
//! Output sequence numbers have no gaps the router made: a switch continues right after the last
//! output, and packets of the current input that are deliberately not forwarded ([`RtpMunger::skip`])
//! give up their output slot. Packets lost upstream keep their slot, so the subscriber sees the
//! gap and can NACK it. Output timestamps continue across a switch by the wall-clock time since
//! the last forwarded packet.

mod seen_window;
mod seq_offsets;

use std::time::Instant;

use crate::drop_reason::DropReason;
use crate::seq::SeqUnwrapper;
use seen_window::SeenWindow;
use seq_offsets::SeqOffsets;

pub(crate) use seen_window::REORDER_WINDOW;

/// The furthest one forwarded packet may move the output ahead. Receivers place a sequence
/// number by its distance from the last (under half the range is ahead, else behind), so a
/// larger step would read as a packet from the past. A publisher whose numbering jumps this far
/// (or a hostile one) has restarted as far as anyone can tell: its stream continues right after
/// the last output, as after a switch, and no gap is left that nobody could repair.
pub const MAX_OUTPUT_JUMP: u64 = 1 << 14;

/// The sequence number / timestamp rewriter of one outgoing stream.
#[derive(Clone, Debug)]
pub struct RtpMunger {
    clock_rate: u32,
    input: Option<InputStream>,
    last_out: Option<LastOutput>,
}

/// The highest output so far, where the next input stream continues.
#[derive(Clone, Copy, Debug)]
struct LastOutput {
    /// Extended output sequence number (output numbering never wraps in 64 bits).
    seq: u64,
    ts: u32,
    /// When it was forwarded, to advance timestamps across a switch.
    at: Instant,
}

/// Mapping state for the input stream currently forwarded.
#[derive(Clone, Debug)]
struct InputStream {
    unwrapper: SeqUnwrapper,
    /// Extended seq of the packet the switch happened at; older packets belong before the switch.
    start: u64,
    seen: SeenWindow,
    offsets: SeqOffsets,
    ts_offset: u32,
}

impl InputStream {
    /// Maps `(seq, ts)` right after `last_out`, or to itself for the very first stream.
    fn start(seq: u16, ts: u32, last_out: Option<&LastOutput>, clock_rate: u32, now: Instant) -> Self {
        let mut unwrapper = SeqUnwrapper::new();
        let first = unwrapper.unwrap(seq);
        let (seq_offset, ts_offset) = match last_out {
            None => (0, 0),
            Some(last) => {
                let out_ts = last.ts.wrapping_add(ticks_between(last.at, now, clock_rate));
                (last.seq.wrapping_add(1).wrapping_sub(first), out_ts.wrapping_sub(ts))
            }
        };
        Self {
            unwrapper,
            start: first,
            seen: SeenWindow::default(),
            offsets: SeqOffsets::new(first, seq_offset),
            ts_offset,
        }
    }

    fn is_too_old(&self, seq: u64) -> bool {
        seq < self.start || seq < self.offsets.floor() || self.seen.is_behind_window(seq)
    }

    /// Marks `seq` handled; returns whether it is the newest input so far.
    fn mark_handled(&mut self, seq: u64) -> bool {
        let newest = self.seen.highest().is_none_or(|highest| seq > highest);
        self.seen.insert(seq);
        if newest {
            self.offsets.forget_before((seq + 1).saturating_sub(REORDER_WINDOW));
        }
        newest
    }
}

/// Clock ticks for the wall-clock time between two forwarded packets: at least 1, so the next
/// frame never shares a timestamp with the previous one, and below half the timestamp range, so
/// it never looks like a step backwards.
fn ticks_between(earlier: Instant, later: Instant, clock_rate: u32) -> u32 {
    let nanos = later.saturating_duration_since(earlier).as_nanos();
    let ticks = nanos.saturating_mul(u128::from(clock_rate)) / 1_000_000_000;
    ticks.clamp(1, i32::MAX as u128) as u32
}

impl RtpMunger {
    /// A munger for a stream whose RTP clock runs at `clock_rate` Hz (90000 for video).
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, input: None, last_out: None }
    }

    /// Starts forwarding a new input stream at the packet `(input_seq, input_ts)`, which is
    /// mapped right after the last output (sequence + 1, timestamp + elapsed wall-clock time).
    /// Call it before [`forward`](Self::forward)ing that packet. The first stream ever keeps its
    /// own numbering.
    pub fn switch_to(&mut self, input_seq: u16, input_ts: u32, now: Instant) {
        let stream = InputStream::start(input_seq, input_ts, self.last_out.as_ref(), self.clock_rate, now);
        self.input = Some(stream);
    }

    /// The output `(seq, ts)` for a packet of the current input stream. A late packet gets the
    /// slot it would have had. Without a current stream, this packet starts one, and so does a
    /// packet that would move the output more than [`MAX_OUTPUT_JUMP`] ahead.
    ///
    /// Errors: [`DropReason::Duplicate`] if it was already forwarded or skipped,
    /// [`DropReason::OutOfOrderTooOld`] if it predates the switch or is too far behind to place.
    pub fn forward(&mut self, input_seq: u16, input_ts: u32, now: Instant) -> Result<(u16, u32), DropReason> {
        let (last_out, clock_rate) = (self.last_out.as_ref(), self.clock_rate);
        let input =
            self.input.get_or_insert_with(|| InputStream::start(input_seq, input_ts, last_out, clock_rate, now));
        let mut seq = input.unwrapper.unwrap(input_seq);
        if input.seen.contains(seq) {
            return Err(DropReason::Duplicate);
        }
        if input.is_too_old(seq) {
            return Err(DropReason::OutOfOrderTooOld);
        }
        let Some(offset) = input.offsets.offset_for(seq) else {
            return Err(DropReason::OutOfOrderTooOld);
        };
        let mut out_seq = seq.wrapping_add(offset);
        if let Some(last) = self.last_out.filter(|last| out_seq > last.seq + MAX_OUTPUT_JUMP) {
            *input = InputStream::start(input_seq, input_ts, Some(&last), clock_rate, now);
            seq = input.unwrapper.unwrap(input_seq);
            out_seq = last.seq + 1;
        }
        let out_ts = input_ts.wrapping_add(input.ts_offset);
        input.mark_handled(seq);
        if self.last_out.is_none_or(|last| out_seq > last.seq) {
            self.last_out = Some(LastOutput { seq: out_seq, ts: out_ts, at: now });
        }
        Ok((out_seq as u16, out_ts))
    }

    /// Records that a packet of the current input stream is deliberately not forwarded (padding,
    /// a frame dropped on purpose): if it is the newest, later packets move down to close its
    /// slot. A late packet's slot already lies between sent packets and stays a gap.
    pub fn skip(&mut self, input_seq: u16) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        let seq = input.unwrapper.unwrap(input_seq);
        if input.seen.contains(seq) || input.is_too_old(seq) {
            return;
        }
        if input.mark_handled(seq) {
            input.offsets.remove_slot(seq);
        }
    }

    /// The highest output sequence number sent so far.
    pub fn last_out_seq(&self) -> Option<u16> {
        self.last_out.map(|last| last.seq as u16)
    }

    /// The output timestamp of the packet with the highest output sequence number.
    pub fn last_out_ts(&self) -> Option<u32> {
        self.last_out.map(|last| last.ts)
    }
}

#[cfg(test)]
mod tests;
