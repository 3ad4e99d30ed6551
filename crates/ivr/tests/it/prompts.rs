//! The prompt set: every built-in prompt is 8 kHz speech of a sensible length; a directory
//! of a profile's own replaces prompts by name; a file that is not 8 kHz mono is refused.

use std::time::Duration;

use ivrpay_ivr::prompts::{self, PromptSet, Utterance};

/// Mean power in dBFS.
fn level(samples: &[i16]) -> f64 {
    let power: f64 =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    10.0 * (power / f64::from(i16::MAX).powi(2)).log10()
}

#[test]
fn every_built_in_prompt_is_speech() {
    let set = PromptSet::builtin().expect("built-in prompts");
    let mut count = 0;
    for name in prompts::names() {
        let samples = set.samples(name);
        let seconds = samples.len() as f64 / 8000.0;
        assert!((0.2..8.0).contains(&seconds), "{name}: {seconds} s");
        let db = level(samples);
        assert!((-35.0..-8.0).contains(&db), "{name}: {db:.1} dBFS");
        count += 1;
    }
    assert_eq!(count, 71);
    // An utterance is its prompts and pauses end to end.
    let u = Utterance::new().clip("n4").pause(250).clip("n2");
    let expected = set.samples("n4").len() + 2000 + set.samples("n2").len();
    assert_eq!(set.render(&u).len_samples(), expected);
    assert_eq!(set.duration(&u), Duration::from_micros(expected as u64 * 125));
}

#[test]
fn a_profile_set_replaces_prompts_by_name() {
    let dir = std::env::temp_dir().join(format!("ivrpay-prompts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let tone: Vec<i16> = (0..4000).map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16).collect();
    let pcm = ivrpay_audio::wav::SampleFormat::Pcm16;
    ivrpay_audio::wav::write_path(dir.join("welcome.wav"), pcm, &tone).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a prompt").expect("write");
    std::fs::write(dir.join("unused-name.wav"), "ignored: no prompt has this name").expect("write");
    let set = PromptSet::with_overrides(&dir).expect("overrides");
    let builtin = PromptSet::builtin().expect("built-in");
    assert_eq!(set.samples("welcome"), &tone[..]);
    assert_eq!(set.samples("goodbye"), builtin.samples("goodbye"));
    // A prompt that is not 8 kHz mono is an error naming the file.
    std::fs::write(dir.join("goodbye.wav"), b"RIFF....WAVEjunk").expect("write");
    let err = PromptSet::with_overrides(&dir).expect_err("bad file").to_string();
    assert!(err.contains("goodbye.wav"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
