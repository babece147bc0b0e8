//! A room's audio mix on the shard that makes it (docs/topologies.md, "Mixing on the server"):
//! the speakers' Opus decoded as it arrives, `sfu_core::AudioMixer` deciding each 20 ms frame,
//! and the frame encoded once for every listener plus once per speaker who must not hear
//! themselves. The shard core drives it (`core/mix.rs`); this holds its state and codecs.

use bytes::Bytes;
use sfu_core::AudioMixer;
use sfu_core::mixer::FRAME_TICKS;
use sfu_proto::ParticipantId;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use crate::TrackKey;
use crate::opus::{CodecUnavailable, OpusDecoder, OpusEncoder};

/// One mixed frame's length, and how often the mix is made.
pub(crate) const TICK: Duration = Duration::from_millis(20);
/// Speakers who each get a mix without their own voice, at most, per frame (the loudest).
pub(crate) const MIX_MINUS_SPEAKERS: usize = 4;
/// After a stall longer than this many frames, the mix skips ahead instead of catching up.
const MAX_CATCH_UP_TICKS: u32 = 10;
/// A speaker's own encoder is kept this long after its last mix-minus frame (it speaks in bursts).
const IDLE_ENCODER: Duration = Duration::from_secs(5);

/// One speaker's audio track feeding the mix.
struct MixInput {
    speaker: ParticipantId,
    decoder: OpusDecoder,
}

/// One frame of the mixed track: every listener's payload, and the mix-minus payloads of the
/// speakers heard in it, sharing one sequence number and timestamp.
pub(crate) struct MixedFrame {
    pub seq: u16,
    pub timestamp: u32,
    /// The first frame after silence (RTP's marker bit for audio: a talkspurt starts).
    pub marker: bool,
    pub all: Bytes,
    pub minus: Vec<(ParticipantId, Bytes)>,
}

/// The mix of one room.
pub(crate) struct RoomMix {
    pub ssrc: u32,
    mixer: AudioMixer<ParticipantId>,
    inputs: HashMap<TrackKey, MixInput>,
    all: OpusEncoder,
    /// Each speaker's own mix-minus encoder, with when it last encoded.
    minus: HashMap<ParticipantId, (OpusEncoder, Instant)>,
    seq: u16,
    timestamp: u32,
    /// The last tick made a frame (so the next one after silence is marked).
    sounding: bool,
    pub next_tick: Instant,
    /// Packets the decoder refused (not Opus, corrupt).
    pub undecodable: u64,
}

impl RoomMix {
    pub fn new(ssrc: u32, now: Instant) -> Result<Self, CodecUnavailable> {
        Ok(Self {
            ssrc,
            mixer: AudioMixer::new(MIX_MINUS_SPEAKERS),
            inputs: HashMap::new(),
            all: OpusEncoder::new()?,
            minus: HashMap::new(),
            seq: rand::random(),
            timestamp: rand::random(),
            sounding: false,
            next_tick: now + TICK,
            undecodable: 0,
        })
    }

    /// `key`, published by `speaker`, is mixed from now on.
    pub fn add_input(&mut self, key: TrackKey, speaker: ParticipantId) -> Result<(), CodecUnavailable> {
        self.inputs.insert(key, MixInput { speaker, decoder: OpusDecoder::new()? });
        Ok(())
    }

    /// `key` is no longer mixed; returns whether it was.
    pub fn remove_input(&mut self, key: TrackKey) -> bool {
        let Some(input) = self.inputs.remove(&key) else { return false };
        if !self.inputs.values().any(|i| i.speaker == input.speaker) {
            self.mixer.remove(&input.speaker);
            self.minus.remove(&input.speaker);
        }
        true
    }

    /// The tracks mixed.
    pub fn input_keys(&self) -> impl Iterator<Item = TrackKey> + '_ {
        self.inputs.keys().copied()
    }

    /// A packet of input `key` arrived at `now`: decoded and queued for its turn.
    pub fn on_packet(&mut self, key: TrackKey, timestamp: u32, payload: &[u8], now: Instant) {
        let Some(input) = self.inputs.get_mut(&key) else { return };
        match input.decoder.decode(payload) {
            Some(pcm) => self.mixer.push(input.speaker.clone(), timestamp, pcm.to_vec(), now),
            None => self.undecodable += 1,
        }
    }

    /// Makes every frame due by `now` (one per 20 ms; after a long stall the mix skips ahead).
    pub fn tick(&mut self, now: Instant) -> Vec<MixedFrame> {
        let mut frames = Vec::new();
        let mut ticks = 0;
        while self.next_tick <= now {
            ticks += 1;
            if ticks > MAX_CATCH_UP_TICKS {
                self.next_tick = now + TICK;
                break;
            }
            let at = self.next_tick;
            self.next_tick += TICK;
            if let Some(frame) = self.frame(at) {
                frames.push(frame);
            }
        }
        self.minus.retain(|_, (_, used)| now.saturating_duration_since(*used) < IDLE_ENCODER);
        frames
    }

    fn frame(&mut self, at: Instant) -> Option<MixedFrame> {
        let timestamp = self.timestamp;
        // The clock runs on through silence, so the listener's jitter buffer keeps real time.
        self.timestamp = self.timestamp.wrapping_add(FRAME_TICKS);
        let Some(mixed) = self.mixer.mix(at) else {
            self.sounding = false;
            return None;
        };
        let all = Bytes::from(self.all.encode(&mixed.all).ok()?);
        let mut minus = Vec::with_capacity(mixed.minus.len());
        for (speaker, pcm) in mixed.minus {
            let (encoder, used) = match self.minus.entry(speaker.clone()) {
                Entry::Occupied(held) => held.into_mut(),
                Entry::Vacant(slot) => match OpusEncoder::new() {
                    Ok(encoder) => slot.insert((encoder, at)),
                    Err(_) => continue,
                },
            };
            *used = at;
            if let Ok(packet) = encoder.encode(&pcm) {
                minus.push((speaker, Bytes::from(packet)));
            }
        }
        let marker = !self.sounding;
        self.sounding = true;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Some(MixedFrame { seq, timestamp, marker, all, minus })
    }
}

#[cfg(all(test, feature = "audio-mix"))]
mod tests {
    use super::*;

    /// 20 ms of a tone at `hz`, frame `index` of a continuous signal.
    fn tone(hz: f64, amplitude: f64, index: usize) -> Vec<i16> {
        (0..960)
            .map(|i| {
                let t = (index * 960 + i) as f64 / 48_000.0;
                (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    /// The amplitude of the `hz` component of `pcm` (Goertzel).
    fn strength(pcm: &[i16], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
        let (mut s1, mut s2) = (0.0, 0.0);
        for sample in pcm {
            let s0 = f64::from(*sample) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2).sqrt() * 2.0 / pcm.len() as f64
    }

    fn who(name: &str) -> ParticipantId {
        ParticipantId(name.into())
    }

    /// What three listeners decode of one frame: everyone's mix, a's and b's mix-minus.
    type Heard = (Vec<i16>, Vec<i16>, Vec<i16>);

    /// Two speakers (440 Hz and 1000 Hz) for one second through the mix; what the listeners
    /// decode in the last half second.
    fn run_two_speakers() -> Vec<Heard> {
        let start = Instant::now();
        let mut mix = RoomMix::new(7, start).unwrap();
        let (ka, kb) = (TrackKey::new(0, 1), TrackKey::new(1, 2));
        mix.add_input(ka, who("a")).unwrap();
        mix.add_input(kb, who("b")).unwrap();
        let (mut enc_a, mut enc_b) = (OpusEncoder::new().unwrap(), OpusEncoder::new().unwrap());
        let mut listeners = [OpusDecoder::new().unwrap(), OpusDecoder::new().unwrap(), OpusDecoder::new().unwrap()];
        let mut heard = Vec::new();
        let mut last_seq = None;
        for i in 0..50 {
            let now = start + TICK * i as u32;
            let ts = 1000u32.wrapping_add(960 * i as u32);
            mix.on_packet(ka, ts, &enc_a.encode(&tone(440.0, 6000.0, i)).unwrap(), now);
            mix.on_packet(kb, ts.wrapping_add(77), &enc_b.encode(&tone(1000.0, 6000.0, i)).unwrap(), now);
            for frame in mix.tick(now) {
                if let Some(last) = last_seq {
                    assert_eq!(frame.seq, u16::wrapping_add(last, 1), "one sequence number per frame");
                }
                last_seq = Some(frame.seq);
                let minus_of = |name: &str| frame.minus.iter().find(|(w, _)| *w == who(name)).map(|(_, p)| p.clone());
                let (all, minus_a, minus_b) = (frame.all.clone(), minus_of("a"), minus_of("b"));
                let decode = |d: &mut OpusDecoder, p: &Bytes| d.decode(p).unwrap().to_vec();
                let all = decode(&mut listeners[0], &all);
                let a = decode(&mut listeners[1], &minus_a.expect("a speaks: a mix without a"));
                let b = decode(&mut listeners[2], &minus_b.expect("b speaks: a mix without b"));
                if i >= 25 {
                    heard.push((all, a, b));
                }
            }
        }
        heard
    }

    #[test]
    fn listeners_hear_everyone_and_a_speaker_does_not_hear_itself() {
        let heard = run_two_speakers();
        assert!(heard.len() >= 20, "a frame every 20 ms once the playout delay passed: {}", heard.len());
        let mean = |f: &dyn Fn(&Heard) -> f64| heard.iter().map(f).sum::<f64>() / heard.len() as f64;
        let all_440 = mean(&|(all, _, _)| strength(all, 440.0));
        let all_1000 = mean(&|(all, _, _)| strength(all, 1000.0));
        let a_440 = mean(&|(_, a, _)| strength(a, 440.0));
        let a_1000 = mean(&|(_, a, _)| strength(a, 1000.0));
        let b_440 = mean(&|(_, _, b)| strength(b, 440.0));
        let b_1000 = mean(&|(_, _, b)| strength(b, 1000.0));
        // Everyone's mix carries both voices at about their level (6000).
        assert!(all_440 > 3000.0 && all_1000 > 3000.0, "all: 440 Hz {all_440:.0}, 1000 Hz {all_1000:.0}");
        // a's mix carries b's voice, and of its own at most a trace (coding noise).
        assert!(a_1000 > 3000.0 && a_440 < a_1000 / 20.0, "minus a: 440 Hz {a_440:.0}, 1000 Hz {a_1000:.0}");
        assert!(b_440 > 3000.0 && b_1000 < b_440 / 20.0, "minus b: 440 Hz {b_440:.0}, 1000 Hz {b_1000:.0}");
    }

    #[test]
    fn undecodable_input_is_counted_and_the_mix_goes_on() {
        let start = Instant::now();
        let mut mix = RoomMix::new(7, start).unwrap();
        let key = TrackKey::new(0, 1);
        mix.add_input(key, who("a")).unwrap();
        let mut encoder = OpusEncoder::new().unwrap();
        let mut frames = 0;
        for i in 0..20 {
            let now = start + TICK * i as u32;
            mix.on_packet(key, 960 * i as u32, &[0x03, 0x00], now);
            mix.on_packet(key, 960 * i as u32, &encoder.encode(&tone(440.0, 3000.0, i)).unwrap(), now);
            frames += mix.tick(now).len();
        }
        assert_eq!(mix.undecodable, 20);
        assert!(frames >= 15, "frames went on: {frames}");
        // An input removed is no longer mixed, and its speaker forgotten.
        assert!(mix.remove_input(key));
        assert!(!mix.remove_input(key));
    }

    #[test]
    fn a_stalled_mix_skips_ahead_rather_than_bursting() {
        let start = Instant::now();
        let mut mix = RoomMix::new(7, start).unwrap();
        let key = TrackKey::new(0, 1);
        mix.add_input(key, who("a")).unwrap();
        let mut encoder = OpusEncoder::new().unwrap();
        for i in 0..5 {
            mix.on_packet(key, 960 * i as u32, &encoder.encode(&tone(440.0, 3000.0, i)).unwrap(), start);
        }
        // A whole second late: at most MAX_CATCH_UP_TICKS frames, and the next tick is ahead.
        let late = start + Duration::from_secs(1);
        assert!(mix.tick(late).len() <= MAX_CATCH_UP_TICKS as usize);
        assert!(mix.next_tick > late);
    }
}
