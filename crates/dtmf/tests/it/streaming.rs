//! Streaming behaviour: any frame size, lost packets, the masker's timing and output.

use ivrpay_dtmf::{
    Detector, DetectorEvent, Digit, Keying, MaskMode, Masker, MaskerConfig, MaskerEvent, ToneSpec,
    key_string,
};

use crate::signal::{Rng, Track, detect, digit_string, samples, through_ulaw, tone};

fn detect_in_frames(x: &[i16], frame: usize) -> String {
    let mut detector = Detector::default();
    let mut out = String::new();
    for f in x.chunks(frame) {
        detector.process(f);
        while let Some(e) = detector.poll_event() {
            if let DetectorEvent::Ended(t) = e {
                out.push(t.digit.as_char());
            }
        }
    }
    detector.finish();
    while let Some(e) = detector.poll_event() {
        if let DetectorEvent::Ended(t) = e {
            out.push(t.digit.as_char());
        }
    }
    out
}

#[test]
fn any_frame_size_gives_the_same_digits() {
    let x = key_string("159D*#0", &Keying { on_ms: 60.0, off_ms: 60.0, ..Keying::default() })
        .expect("keys");
    for frame in [1, 7, 51, 80, 160, 240, 320, 1000, x.len()] {
        assert_eq!(detect_in_frames(&x, frame), "159D*#0", "frames of {frame}");
    }
}

#[test]
fn began_comes_before_ended_with_the_same_start() {
    let x = key_string("4", &Keying::default()).expect("keys");
    let mut detector = Detector::default();
    detector.process(&x);
    detector.finish();
    let events: Vec<_> = std::iter::from_fn(|| detector.poll_event()).collect();
    match events.as_slice() {
        [DetectorEvent::Began { digit, start }, DetectorEvent::Ended(tone)] => {
            assert_eq!(*digit, tone.digit);
            assert_eq!(*start, tone.start);
            assert_eq!(digit.as_char(), '4');
        }
        other => panic!("unexpected events: {other:?}"),
    }
}

/// A lost 20 ms packet in the middle of a key press: one digit, not two.
#[test]
fn fill_in_bridges_a_lost_packet() {
    let x = key_string("8", &Keying { on_ms: 200.0, ..Keying::default() }).expect("keys");
    let mut detector = Detector::default();
    let lost = 6; // the seventh packet (120-140 ms) is in the middle of the tone
    for (i, packet) in x.chunks(160).enumerate() {
        if i == lost {
            detector.fill_in(packet.len());
        } else {
            detector.process(packet);
        }
    }
    detector.finish();
    let tones: Vec<_> = std::iter::from_fn(|| detector.poll_event())
        .filter_map(|e| if let DetectorEvent::Ended(t) = e { Some(t) } else { None })
        .collect();
    assert_eq!(tones.len(), 1);
    assert!(tones[0].end >= 2200, "the digit lasts past the gap: {:?}", tones[0]);
}

/// A long gap ends the digit; the key heard again afterwards is a new digit.
#[test]
fn a_long_gap_ends_the_digit() {
    let x = key_string("8", &Keying { on_ms: 200.0, ..Keying::default() }).expect("keys");
    let mut detector = Detector::default();
    detector.process(&x[..1600]);
    detector.fill_in(800); // 100 ms lost
    detector.process(&x[1600..]);
    detector.finish();
    let count = std::iter::from_fn(|| detector.poll_event())
        .filter(|e| matches!(e, DetectorEvent::Ended(_)))
        .count();
    assert_eq!(count, 2);
}

/// Output = input delayed by the lookahead, for audio with no DTMF in it, for any frame size.
#[test]
fn masker_passes_other_audio_bit_exact() {
    let mut rng = Rng::new(41);
    let input: Vec<i16> = (0..16_000).map(|_| (rng.gaussian() * 3000.0) as i16).collect();
    for (lookahead, frame) in [(160usize, 160usize), (160, 7), (0, 160), (80, 33), (400, 500)] {
        let mut masker = Masker::new(MaskerConfig { lookahead, ..MaskerConfig::default() });
        let mut out = vec![0; input.len()];
        for (i, o) in input.chunks(frame).zip(out.chunks_mut(frame)) {
            masker.process(i, o);
        }
        assert!(out[..lookahead].iter().all(|&s| s == 0));
        assert_eq!(
            &out[lookahead..],
            &input[..input.len() - lookahead],
            "lookahead {lookahead} frame {frame}"
        );
        assert!(std::iter::from_fn(|| masker.poll_event()).next().is_none());
    }
}

/// Every mode replaces a tone and leaves the rest; the flat tone is the same for every key.
#[test]
fn masker_modes_replace_tones() {
    let mut rng = Rng::new(42);
    for mode in [MaskMode::Tone, MaskMode::Silence, MaskMode::Noise] {
        let mut outputs = Vec::new();
        for d in ['1', 'D'] {
            let mut track = Track::new();
            track.silence(samples(100.0));
            track.tone(tone(&mut rng, Digit::from_char(d).expect("key"), 100.0));
            track.silence(samples(200.0));
            let input = through_ulaw(&track.audio);
            let mut masker = Masker::new(MaskerConfig { mode, ..MaskerConfig::default() });
            let mut out = vec![0; input.len()];
            masker.process(&input, &mut out);
            let masked: Vec<_> = std::iter::from_fn(|| masker.poll_event())
                .filter_map(|e| if let MaskerEvent::Masked(s) = e { Some(s) } else { None })
                .collect();
            assert_eq!(masked.len(), 1, "{mode:?}: one span");
            let span = masked[0];
            let p = track.truth[0];
            assert!(
                span.start <= p.start as u64 && span.end >= p.end() as u64,
                "{mode:?}: {span:?}"
            );
            let delayed = |i: u64| out[i as usize + 160];
            let peak = (span.start..span.end).map(|i| delayed(i).unsigned_abs()).max().unwrap_or(0);
            match mode {
                MaskMode::Silence => assert_eq!(peak, 0),
                MaskMode::Noise => assert!(peak > 0 && peak < 40, "{peak}"),
                MaskMode::Tone => assert!(peak > 1000 && peak < 2500, "{peak}"),
            }
            assert!(digit_string(&detect(&out)).is_empty(), "{mode:?}: the output holds no digit");
            outputs.push((span, out));
        }
        if mode == MaskMode::Tone {
            // Same replacement for '1' and 'D': compare the first 40 ms of each span.
            let [(a_span, a), (b_span, b)] = [&outputs[0], &outputs[1]];
            let a = &a[a_span.start as usize + 160..][..320];
            let b = &b[b_span.start as usize + 160..][..320];
            assert_eq!(a, b, "the flat tone must not depend on the key");
        }
    }
}

/// Zero lookahead still masks (late): the rest of the tone is hidden, only the onset leaks.
#[test]
fn smaller_lookahead_masks_late_not_never() {
    let x = key_string("3", &Keying { on_ms: 200.0, ..Keying::default() }).expect("keys");
    let mut masker = Masker::new(MaskerConfig { lookahead: 0, ..MaskerConfig::default() });
    let mut out = vec![0; x.len()];
    for (i, o) in x.chunks(160).zip(out.chunks_mut(160)) {
        masker.process(i, o);
    }
    let tone = 800..2400;
    let changed = tone.clone().filter(|&i| out[i] != x[i]).count();
    assert!(changed > tone.len() * 3 / 4, "only {changed} of {} tone samples masked", tone.len());
}

#[test]
fn masker_fill_in_keeps_time() {
    let x = key_string("2", &Keying { on_ms: 200.0, ..Keying::default() }).expect("keys");
    let mut masker = Masker::default();
    let mut out = vec![0; x.len()];
    for (i, (inp, o)) in x.chunks(160).zip(out.chunks_mut(160)).enumerate() {
        if i == 7 {
            masker.fill_in(inp.len(), o);
        } else {
            masker.process(inp, o);
        }
    }
    masker.finish();
    let digits: Vec<_> = std::iter::from_fn(|| masker.poll_event())
        .filter_map(|e| {
            if let MaskerEvent::Digit(DetectorEvent::Ended(t)) = e { Some(t) } else { None }
        })
        .collect();
    assert_eq!(digits.len(), 1);
    assert!(digit_string(&detect(&out)).is_empty());
}

#[test]
fn tone_spec_levels_follow_twist() {
    let spec = ToneSpec { level_dbm0: -5.0, twist_db: -8.0, ..ToneSpec::new(Digit::ALL[0], 10) };
    assert_eq!(spec.levels_dbm0(), (-5.0, -13.0));
    let spec = ToneSpec { twist_db: 4.0, ..spec };
    assert_eq!(spec.levels_dbm0(), (-9.0, -5.0));
}
