//! How loud a published audio track is, from the RFC 6464 audio-level header extension the
//! sender puts on every packet, smoothed so that a room's speaker ranking does not jump with
//! every syllable.
//!
//! The caller feeds each packet's level ([`AudioLevelMeter::on_packet`]) and, at a fixed
//! interval ([`SPEAKER_REPORT_INTERVAL`]), takes the smoothed loudness
//! ([`AudioLevelMeter::take_window`]). No clock is read: the interval is the caller's.

use std::time::Duration;

/// How often the caller closes a window and reports loudness: a few windows per second follow
/// speech turns closely enough while keeping signaling traffic to a handful of messages.
pub const SPEAKER_REPORT_INTERVAL: Duration = Duration::from_millis(200);

/// Packets at or below this many dB under overload count as voice. Speech sits around 20-40;
/// room noise and a muted microphone read 60 and more (127 is digital silence).
pub const VOICE_DBOV: u8 = 50;

/// Weight of a new window when loudness rises: a new speaker shows within two or three windows.
const ATTACK: f32 = 0.6;
/// Weight of a new window when loudness falls: pauses between words do not drop a speaker.
const RELEASE: f32 = 0.25;
/// Below this the smoothed loudness is reported as zero (it would otherwise decay forever).
const FLOOR: f32 = 1e-4;

/// Parses the one-byte RFC 6464 payload: the voice-activity flag (top bit) and the level in
/// -dBov (0 = loudest, 127 = silence).
pub fn parse_audio_level(payload: &[u8]) -> Option<(bool, u8)> {
    let byte = *payload.first()?;
    Some((byte & 0x80 != 0, byte & 0x7f))
}

/// Smoothed loudness of one audio track.
#[derive(Clone, Debug, Default)]
pub struct AudioLevelMeter {
    /// Sum of the linear amplitudes of the window's voice packets.
    voice_amplitude: f32,
    packets: u32,
    smoothed: f32,
}

impl AudioLevelMeter {
    /// A meter that has heard nothing yet (loudness 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// One packet's level, in -dBov (0..=127; larger values are clamped).
    pub fn on_packet(&mut self, dbov: u8) {
        self.packets = self.packets.saturating_add(1);
        let dbov = dbov.min(127);
        if dbov <= VOICE_DBOV {
            self.voice_amplitude += 10f32.powf(-f32::from(dbov) / 20.0);
        }
    }

    /// Closes the window: returns the smoothed loudness (0 = silent, 1 = full scale on every
    /// packet) and starts the next window. A window without packets (muted, or the sender
    /// stopped) counts as silence.
    pub fn take_window(&mut self) -> f32 {
        let window = if self.packets == 0 { 0.0 } else { self.voice_amplitude / self.packets as f32 };
        let weight = if window > self.smoothed { ATTACK } else { RELEASE };
        self.smoothed += weight * (window - self.smoothed);
        if self.smoothed < FLOOR {
            self.smoothed = 0.0;
        }
        self.voice_amplitude = 0.0;
        self.packets = 0;
        self.smoothed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `windows` windows of `packets` packets at `dbov`; returns the last loudness.
    fn run(meter: &mut AudioLevelMeter, dbov: u8, packets: u32, windows: u32) -> f32 {
        let mut level = 0.0;
        for _ in 0..windows {
            for _ in 0..packets {
                meter.on_packet(dbov);
            }
            level = meter.take_window();
        }
        level
    }

    #[test]
    fn parses_the_flag_and_the_level() {
        assert_eq!(parse_audio_level(&[0x80 | 30]), Some((true, 30)));
        assert_eq!(parse_audio_level(&[127]), Some((false, 127)));
        assert_eq!(parse_audio_level(&[]), None);
    }

    #[test]
    fn louder_speech_reads_louder_and_noise_reads_zero() {
        let loud = run(&mut AudioLevelMeter::new(), 10, 10, 10);
        let soft = run(&mut AudioLevelMeter::new(), 30, 10, 10);
        let noise = run(&mut AudioLevelMeter::new(), 70, 10, 10);
        assert!(loud > soft && soft > 0.0, "{loud} {soft}");
        assert!((loud - 10f32.powf(-0.5)).abs() < 0.01, "steady 10 dBov converges to its amplitude: {loud}");
        assert_eq!(noise, 0.0);
    }

    #[test]
    fn rises_fast_and_falls_slowly() {
        let mut meter = AudioLevelMeter::new();
        let target = 10f32.powf(-0.5);
        let after_two = run(&mut meter, 10, 10, 2);
        assert!(after_two > 0.8 * target, "two windows of speech reach 80 %: {after_two}");
        let after_pause = run(&mut meter, 127, 10, 1);
        assert!(after_pause > 0.6 * after_two, "one silent window keeps most of it: {after_pause}");
        let after_silence = run(&mut meter, 127, 10, 40);
        assert_eq!(after_silence, 0.0, "eight seconds of silence reach zero");
    }

    #[test]
    fn half_the_packets_voiced_reads_half_as_loud() {
        let mut meter = AudioLevelMeter::new();
        let mut half = 0.0;
        for _ in 0..20 {
            for i in 0..10 {
                meter.on_packet(if i % 2 == 0 { 10 } else { 127 });
            }
            half = meter.take_window();
        }
        let full = run(&mut AudioLevelMeter::new(), 10, 10, 20);
        assert!((half - full / 2.0).abs() < 0.01, "{half} vs {full}");
    }

    #[test]
    fn a_window_without_packets_is_silence() {
        let mut meter = AudioLevelMeter::new();
        let before = run(&mut meter, 10, 10, 5);
        assert!(meter.take_window() < before);
    }
}
