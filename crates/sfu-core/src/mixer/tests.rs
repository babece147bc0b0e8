use super::*;

const TICK: Duration = Duration::from_millis(20);

fn tone(amplitude: i16) -> Vec<i16> {
    (0..FRAME_SAMPLES).map(|i| if i % 2 == 0 { amplitude } else { -amplitude }).collect()
}

/// The mixer ticked every 20 ms from `start` for `ticks` ticks, with each speaker's frames
/// pushed just before their tick (`frames[speaker]` is its amplitude per tick, None = no frame).
fn run(frames: &[(&'static str, Vec<Option<i16>>)], ticks: usize) -> Vec<Option<Mixed<&'static str>>> {
    let mut mixer = AudioMixer::new(2);
    let start = Instant::now();
    let mut out = Vec::new();
    for tick in 0..ticks {
        let now = start + TICK * tick as u32;
        for (who, per_tick) in frames {
            if let Some(Some(amplitude)) = per_tick.get(tick) {
                mixer.push(*who, 1000 + FRAME_TICKS * tick as u32, tone(*amplitude), now);
            }
        }
        out.push(mixer.mix(now + Duration::from_millis(1)));
    }
    out
}

#[test]
fn a_speaker_is_played_after_the_playout_delay_and_mixed_with_the_others() {
    let a = ("a", vec![Some(1000); 10]);
    let b = ("b", vec![Some(300); 10]);
    let out = run(&[a, b], 10);
    // Played 40 ms after the first frame: nothing at ticks 0 and 1.
    assert!(out[0].is_none() && out[1].is_none());
    let mixed = out[2].as_ref().expect("a mix at 40 ms");
    assert_eq!(&mixed.all[..2], &[1300, -1300]);
    // Both are speaking: each gets the mix without itself, loudest first.
    let minus: Vec<_> = mixed.minus.iter().map(|(who, pcm)| (*who, pcm[0])).collect();
    assert_eq!(minus, vec![("a", 300), ("b", 1000)]);
}

#[test]
fn only_the_loudest_get_a_mix_without_themselves_and_the_quiet_none() {
    let out = run(
        &[("a", vec![Some(3000); 6]), ("b", vec![Some(2000); 6]), ("c", vec![Some(1000); 6]), ("d", vec![Some(10); 6])],
        6,
    );
    let mixed = out[3].as_ref().unwrap();
    assert_eq!(mixed.all[0], 6010);
    let who: Vec<_> = mixed.minus.iter().map(|(who, _)| *who).collect();
    assert_eq!(who, vec!["a", "b"], "two places, the loudest; d is below the speaking amplitude anyway");
}

#[test]
fn sums_saturate_instead_of_wrapping() {
    let out = run(&[("a", vec![Some(30_000); 4]), ("b", vec![Some(30_000); 4])], 4);
    let mixed = out[2].as_ref().unwrap();
    assert_eq!(&mixed.all[..2], &[i16::MAX, i16::MIN]);
    assert_eq!(mixed.minus[0].1[0], 30_000, "the mix without one of them is exact");
}

#[test]
fn jitter_is_absorbed_a_late_frame_is_dropped_and_a_missing_one_is_silence() {
    let mut mixer = AudioMixer::new(1);
    let start = Instant::now();
    let ts = |n: u32| 5000 + FRAME_TICKS * n;
    // Frames 0 and 2 arrive on time, 1 after 2 (reordered within the delay): all play in order.
    mixer.push("a", ts(0), tone(100), start);
    mixer.push("a", ts(2), tone(300), start + TICK);
    mixer.push("a", ts(1), tone(200), start + TICK + Duration::from_millis(5));
    let at = |n: u32| start + PLAYOUT_DELAY + TICK * n;
    let played: Vec<i16> = (0..3).map(|n| mixer.mix(at(n)).map_or(0, |m| m.all[0])).collect();
    assert_eq!(played, vec![100, 200, 300]);
    // Frame 3 never comes: that tick is silent (no mix); frame 4 plays on time; frame 3 arriving
    // now is past its turn and dropped.
    mixer.push("a", ts(4), tone(500), at(3));
    assert_eq!(mixer.mix(at(3)), None);
    mixer.push("a", ts(3), tone(400), at(3) + Duration::from_millis(1));
    assert_eq!(mixer.mix(at(4)).map(|m| m.all[0]), Some(500));
    assert_eq!(mixer.mix(at(5)), None);
}

#[test]
fn a_speaker_back_after_a_pause_waits_the_playout_delay_again() {
    let mut mixer = AudioMixer::new(1);
    let start = Instant::now();
    mixer.push("a", 0, tone(100), start);
    assert!(mixer.mix(start + PLAYOUT_DELAY).is_some());
    // Back a second later with a timestamp far ahead (a mute): it restarts, no catching up.
    let back = start + Duration::from_secs(1);
    mixer.push("a", 48_000 * 5, tone(200), back);
    assert_eq!(mixer.mix(back + Duration::from_millis(1)), None, "waits again");
    assert_eq!(mixer.mix(back + PLAYOUT_DELAY).map(|m| m.all[0]), Some(200));
}

#[test]
fn timestamps_wrap_and_queues_stay_bounded() {
    let mut mixer = AudioMixer::new(1);
    let start = Instant::now();
    let first = u32::MAX - FRAME_TICKS;
    for n in 0..40u32 {
        mixer.push("a", first.wrapping_add(FRAME_TICKS * n), tone(n as i16 + 1), start);
    }
    // All arrived at once: only the newest MAX_QUEUED_FRAMES are kept, and they play in order
    // across the wrap.
    let played: Vec<i16> = (0..MAX_QUEUED_FRAMES as u32)
        .map(|n| mixer.mix(start + PLAYOUT_DELAY + TICK * n).map_or(0, |m| m.all[0]))
        .collect();
    let expected: Vec<i16> = (30..40).map(|n| n as i16 + 1).collect();
    assert_eq!(played, expected);
    mixer.remove(&"a");
    assert_eq!(mixer.speaker_count(), 0);
}

#[test]
fn a_speaker_whose_clock_runs_ahead_skips_frames_instead_of_falling_silent() {
    let mut mixer = AudioMixer::new(1);
    let start = Instant::now();
    // Two frames per tick for 30 ticks: twice our rate.
    let mut heard = 0;
    for n in 0..30u32 {
        let now = start + TICK * n;
        mixer.push("a", FRAME_TICKS * 2 * n, tone(100), now);
        mixer.push("a", FRAME_TICKS * (2 * n + 1), tone(100), now);
        if mixer.mix(now + Duration::from_millis(1)).is_some() {
            heard += 1;
        }
    }
    assert!(heard >= 25, "heard at only {heard} of 30 ticks");
}
