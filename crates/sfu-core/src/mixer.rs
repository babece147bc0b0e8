//! The audio mixer's decisions (an MCU for audio only, docs/topologies.md): which frame of each
//! speaker goes into the mix at each 20 ms tick, the mix every listener hears, and a mix without
//! their own voice for the few who are speaking.
//!
//! Decoding and encoding (Opus) happen outside; this core sees PCM frames stamped with their RTP
//! timestamps and the time they arrived, and never reads the clock. Each speaker's frames wait in
//! a short queue (the jitter they arrive with) and are played out `PLAYOUT_DELAY` after the first
//! one, one per tick, in timestamp order; a frame that comes after its turn is dropped, and a
//! missing one is silence for that tick.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Samples per channel in one frame: 20 ms at 48 kHz, Opus's usual frame.
pub const FRAME_SAMPLES: usize = 960;
/// RTP timestamp units per frame (Opus's RTP clock is 48 kHz).
pub const FRAME_TICKS: u32 = FRAME_SAMPLES as u32;
/// How long a speaker's first frame waits before it is played: room for the jitter of what
/// follows.
pub const PLAYOUT_DELAY: Duration = Duration::from_millis(40);
/// Frames a speaker may have queued; more means its clock runs ahead, and the oldest go.
pub const MAX_QUEUED_FRAMES: usize = 10;
/// A speaker silent (no frame) this long starts over: its next frame waits the playout delay
/// again, as after a mute or a network outage.
pub const RESTART_AFTER: Duration = Duration::from_millis(500);
/// Mean absolute amplitude of a frame from which its speaker counts as speaking in it (about
/// -45 dBFS).
pub const SPEAKING_AMPLITUDE: i32 = 180;

/// What [`AudioMixer::mix`] gives for one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mixed<K> {
    /// Everyone's frames summed: what a listener who is not speaking hears.
    pub all: Vec<i16>,
    /// For each speaker whose voice is in `all`, the mix without it (so nobody hears
    /// themselves), at most [`AudioMixer::new`]'s `minus_count`, the loudest.
    pub minus: Vec<(K, Vec<i16>)>,
}

#[derive(Debug)]
struct Speaker {
    /// Frames by RTP timestamp, unwrapped to 64 bits.
    queue: BTreeMap<u64, Vec<i16>>,
    /// The timestamp of the frame to play at the next tick, once started.
    next: Option<u64>,
    /// When the first frame of this run may be played.
    start_at: Option<Instant>,
    last_timestamp: Option<u64>,
    last_arrival: Option<Instant>,
}

/// Mixes the frames of the speakers of one room.
#[derive(Debug)]
pub struct AudioMixer<K> {
    speakers: HashMap<K, Speaker>,
    minus_count: usize,
}

impl<K: Clone + Eq + Hash + Ord> AudioMixer<K> {
    /// A mixer that makes a mix without their own voice for at most `minus_count` speakers at
    /// a time.
    pub fn new(minus_count: usize) -> Self {
        Self { speakers: HashMap::new(), minus_count }
    }

    /// `who` is no longer mixed (left, or stopped publishing audio).
    pub fn remove(&mut self, who: &K) {
        self.speakers.remove(who);
    }

    /// How many speakers the mixer knows.
    pub fn speaker_count(&self) -> usize {
        self.speakers.len()
    }

    /// A decoded frame of `who` (mono, [`FRAME_SAMPLES`] samples; shorter ones are padded with
    /// silence, longer ones cut) with its RTP timestamp, arrived at `now`.
    pub fn push(&mut self, who: K, timestamp: u32, mut pcm: Vec<i16>, now: Instant) {
        pcm.resize(FRAME_SAMPLES, 0);
        let speaker = self.speakers.entry(who).or_insert_with(|| Speaker {
            queue: BTreeMap::new(),
            next: None,
            start_at: None,
            last_timestamp: None,
            last_arrival: None,
        });
        if speaker.last_arrival.is_some_and(|at| now.saturating_duration_since(at) >= RESTART_AFTER) {
            speaker.queue.clear();
            speaker.next = None;
            speaker.start_at = None;
        }
        speaker.last_arrival = Some(now);
        let unwrapped = unwrap(speaker.last_timestamp, timestamp);
        speaker.last_timestamp = Some(speaker.last_timestamp.map_or(unwrapped, |last| last.max(unwrapped)));
        if speaker.next.is_some_and(|next| unwrapped < next) {
            return; // its turn is past
        }
        speaker.start_at.get_or_insert(now + PLAYOUT_DELAY);
        speaker.queue.insert(unwrapped, pcm);
        while speaker.queue.len() > MAX_QUEUED_FRAMES {
            speaker.queue.pop_first();
            // Its clock runs ahead of ours: skip to what is left, or it would stay silent.
            if let (Some(next), Some((first, _))) = (speaker.next, speaker.queue.first_key_value())
                && next < *first
            {
                speaker.next = Some(*first);
            }
        }
    }

    /// The mix for the tick at `now` (called every 20 ms), or `None` when nobody's frame is due.
    pub fn mix(&mut self, now: Instant) -> Option<Mixed<K>> {
        let mut frames: Vec<(K, Vec<i16>, i64)> = Vec::new();
        for (who, speaker) in &mut self.speakers {
            if speaker.start_at.is_none_or(|at| now < at) {
                continue;
            }
            let Some(next) = speaker.next.or_else(|| speaker.queue.keys().next().copied()) else { continue };
            // Anything older than its turn is gone.
            while speaker.queue.first_key_value().is_some_and(|(ts, _)| *ts < next) {
                speaker.queue.pop_first();
            }
            speaker.next = Some(next + u64::from(FRAME_TICKS));
            if let Some(pcm) = speaker.queue.remove(&next) {
                let energy = pcm.iter().map(|s| i64::from(s.unsigned_abs())).sum::<i64>();
                frames.push((who.clone(), pcm, energy));
            }
        }
        if frames.is_empty() {
            return None;
        }
        let mut sum = vec![0i32; FRAME_SAMPLES];
        for (_, pcm, _) in &frames {
            for (acc, s) in sum.iter_mut().zip(pcm) {
                *acc += i32::from(*s);
            }
        }
        let all = sum.iter().map(|s| saturate(*s)).collect();
        let speaking_energy = i64::from(SPEAKING_AMPLITUDE) * FRAME_SAMPLES as i64;
        let mut speaking: Vec<&(K, Vec<i16>, i64)> = frames.iter().filter(|(_, _, e)| *e >= speaking_energy).collect();
        speaking.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        let minus = speaking
            .into_iter()
            .take(self.minus_count)
            .map(|(who, pcm, _)| {
                let without = sum.iter().zip(pcm).map(|(acc, s)| saturate(*acc - i32::from(*s))).collect();
                (who.clone(), without)
            })
            .collect();
        Some(Mixed { all, minus })
    }
}

fn saturate(sample: i32) -> i16 {
    sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// `timestamp` as a 64-bit count, continuing from `last` across 32-bit wraps.
fn unwrap(last: Option<u64>, timestamp: u32) -> u64 {
    let Some(last) = last else { return u64::from(timestamp) + (1 << 32) };
    let base = last & !0xffff_ffff;
    let candidates = [base.wrapping_sub(1 << 32), base, base + (1 << 32)].map(|b| b.wrapping_add(u64::from(timestamp)));
    *candidates.iter().min_by_key(|c| c.abs_diff(last)).expect("three candidates")
}

#[cfg(test)]
mod tests;
