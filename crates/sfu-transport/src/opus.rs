//! Opus through the system's libopus (feature `audio-mix`; Debian's `libopus-dev`): a decoder
//! per speaker and an encoder per mix, mono at 48 kHz, 20 ms frames. Without the feature both
//! constructors fail with [`CodecUnavailable`], so a build without libopus still runs and
//! refuses to mix.

use std::fmt;

/// The build has no Opus codec (built without the `audio-mix` feature), or libopus refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecUnavailable(pub String);

impl fmt::Display for CodecUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "opus unavailable: {}", self.0)
    }
}

/// The sample rate everything is decoded to and encoded from.
#[cfg(feature = "audio-mix")]
const SAMPLE_RATE: i32 = 48_000;
/// What the mixed track is encoded at: enough for speech in full band, mono.
#[cfg(feature = "audio-mix")]
const MIX_BITRATE: i32 = 32_000;
/// The longest Opus packet (RFC 6716): what an encode may write.
const MAX_PACKET: usize = 1275;
/// The longest frame a packet may carry, 120 ms at 48 kHz, per channel.
const MAX_FRAME_SAMPLES: usize = 5760;

#[cfg(feature = "audio-mix")]
mod ffi {
    use std::os::raw::{c_int, c_uchar, c_void};

    pub const OPUS_APPLICATION_VOIP: c_int = 2048;
    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;

    #[link(name = "opus")]
    unsafe extern "C" {
        pub fn opus_encoder_create(fs: i32, channels: c_int, application: c_int, error: *mut c_int) -> *mut c_void;
        pub fn opus_encoder_ctl(st: *mut c_void, request: c_int, ...) -> c_int;
        pub fn opus_encode(st: *mut c_void, pcm: *const i16, frame_size: c_int, data: *mut c_uchar, max: i32) -> i32;
        pub fn opus_encoder_destroy(st: *mut c_void);
        pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut c_void;
        pub fn opus_decode(
            st: *mut c_void,
            data: *const c_uchar,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        pub fn opus_decoder_destroy(st: *mut c_void);
    }
}

/// A mono Opus encoder.
pub struct OpusEncoder {
    #[cfg(feature = "audio-mix")]
    state: std::ptr::NonNull<std::os::raw::c_void>,
}

/// A mono Opus decoder (a stereo stream is down-mixed by libopus).
pub struct OpusDecoder {
    #[cfg(feature = "audio-mix")]
    state: std::ptr::NonNull<std::os::raw::c_void>,
    pcm: Vec<i16>,
}

// SAFETY: the codec states are plain memory owned by their wrapper and used through `&mut self`
// only; nothing in them is tied to the thread that created them.
#[cfg(feature = "audio-mix")]
unsafe impl Send for OpusEncoder {}
// SAFETY: as for the encoder.
#[cfg(feature = "audio-mix")]
unsafe impl Send for OpusDecoder {}

impl OpusEncoder {
    /// An encoder for speech at [`MIX_BITRATE`].
    pub fn new() -> Result<Self, CodecUnavailable> {
        #[cfg(feature = "audio-mix")]
        {
            let mut error = 0;
            // SAFETY: valid arguments; the result is checked for null before use.
            let state = unsafe { ffi::opus_encoder_create(SAMPLE_RATE, 1, ffi::OPUS_APPLICATION_VOIP, &mut error) };
            let state = std::ptr::NonNull::new(state)
                .filter(|_| error == 0)
                .ok_or_else(|| CodecUnavailable(format!("opus_encoder_create failed ({error})")))?;
            // SAFETY: a live encoder; OPUS_SET_BITRATE takes one opus_int32.
            unsafe { ffi::opus_encoder_ctl(state.as_ptr(), ffi::OPUS_SET_BITRATE_REQUEST, MIX_BITRATE) };
            Ok(Self { state })
        }
        #[cfg(not(feature = "audio-mix"))]
        Err(CodecUnavailable("built without the audio-mix feature".into()))
    }

    /// Encodes one frame (a multiple of 2.5 ms of mono samples; 960 for 20 ms) into a packet.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecUnavailable> {
        #[cfg(feature = "audio-mix")]
        {
            let mut out = vec![0u8; MAX_PACKET];
            // SAFETY: `pcm` holds `pcm.len()` samples of one channel; `out` has MAX_PACKET bytes.
            let written = unsafe {
                ffi::opus_encode(
                    self.state.as_ptr(),
                    pcm.as_ptr(),
                    pcm.len() as i32,
                    out.as_mut_ptr(),
                    MAX_PACKET as i32,
                )
            };
            if written < 0 {
                return Err(CodecUnavailable(format!("opus_encode failed ({written})")));
            }
            out.truncate(written as usize);
            Ok(out)
        }
        #[cfg(not(feature = "audio-mix"))]
        {
            let _ = (pcm, MAX_PACKET);
            Err(CodecUnavailable("built without the audio-mix feature".into()))
        }
    }
}

impl OpusDecoder {
    /// A decoder to mono at 48 kHz.
    pub fn new() -> Result<Self, CodecUnavailable> {
        #[cfg(feature = "audio-mix")]
        {
            let mut error = 0;
            // SAFETY: valid arguments; the result is checked for null before use.
            let state = unsafe { ffi::opus_decoder_create(SAMPLE_RATE, 1, &mut error) };
            let state = std::ptr::NonNull::new(state)
                .filter(|_| error == 0)
                .ok_or_else(|| CodecUnavailable(format!("opus_decoder_create failed ({error})")))?;
            Ok(Self { state, pcm: vec![0; MAX_FRAME_SAMPLES] })
        }
        #[cfg(not(feature = "audio-mix"))]
        Err(CodecUnavailable("built without the audio-mix feature".into()))
    }

    /// Decodes one packet; `None` when libopus refuses it (corrupt or not Opus: hostile input
    /// is dropped, never trusted).
    pub fn decode(&mut self, packet: &[u8]) -> Option<&[i16]> {
        #[cfg(feature = "audio-mix")]
        {
            if packet.is_empty() {
                return None;
            }
            // SAFETY: `packet` is readable for its length; `pcm` holds MAX_FRAME_SAMPLES samples
            // of one channel, the longest frame libopus writes.
            let samples = unsafe {
                ffi::opus_decode(
                    self.state.as_ptr(),
                    packet.as_ptr(),
                    packet.len() as i32,
                    self.pcm.as_mut_ptr(),
                    MAX_FRAME_SAMPLES as i32,
                    0,
                )
            };
            (samples > 0).then(|| &self.pcm[..samples as usize])
        }
        #[cfg(not(feature = "audio-mix"))]
        {
            let _ = (packet, MAX_FRAME_SAMPLES);
            self.pcm.get(..0)
        }
    }
}

#[cfg(feature = "audio-mix")]
impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create, destroyed once.
        unsafe { ffi::opus_encoder_destroy(self.state.as_ptr()) }
    }
}

#[cfg(feature = "audio-mix")]
impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed once.
        unsafe { ffi::opus_decoder_destroy(self.state.as_ptr()) }
    }
}

#[cfg(all(test, feature = "audio-mix"))]
mod tests {
    use super::*;

    /// A 440 Hz tone, `frames` frames of 20 ms.
    fn tone(frames: usize, amplitude: f64) -> Vec<Vec<i16>> {
        (0..frames)
            .map(|f| {
                (0..960)
                    .map(|i| {
                        let t = (f * 960 + i) as f64 / 48_000.0;
                        (amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn mean_abs(pcm: &[i16]) -> f64 {
        pcm.iter().map(|s| f64::from(*s).abs()).sum::<f64>() / pcm.len() as f64
    }

    #[test]
    fn a_tone_survives_encoding_and_decoding_at_about_its_level() {
        let mut encoder = OpusEncoder::new().unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut levels = Vec::new();
        for frame in tone(25, 8000.0) {
            let packet = encoder.encode(&frame).unwrap();
            assert!(!packet.is_empty() && packet.len() <= MAX_PACKET);
            let pcm = decoder.decode(&packet).unwrap();
            assert_eq!(pcm.len(), 960);
            levels.push(mean_abs(pcm));
        }
        // Past the codec's start-up, the level is the tone's (2/pi of the amplitude), within 25 %.
        let expected = 8000.0 * 2.0 / std::f64::consts::PI;
        let settled = levels[10..].iter().sum::<f64>() / (levels.len() - 10) as f64;
        assert!((settled - expected).abs() < expected * 0.25, "decoded level {settled}, expected {expected}");
    }

    #[test]
    fn garbage_is_refused_not_trusted() {
        let mut decoder = OpusDecoder::new().unwrap();
        assert!(decoder.decode(&[]).is_none());
        // A TOC byte announcing code 3 (arbitrary frame count) with a frame count of zero.
        assert!(decoder.decode(&[0x03, 0x00]).is_none());
        // Still usable afterwards.
        let mut encoder = OpusEncoder::new().unwrap();
        let packet = encoder.encode(&tone(1, 1000.0)[0]).unwrap();
        assert_eq!(decoder.decode(&packet).map(<[i16]>::len), Some(960));
    }
}
