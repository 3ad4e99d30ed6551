//! The offline DTMF tools, run as a user runs them: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ivrpay_audio::wav::{self, SampleFormat};

fn ivrpay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivrpay")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ivrpay-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn generate_then_detect_in_every_format() {
    let dir = scratch("formats");
    for format in ["pcm", "ulaw", "alaw"] {
        let file = dir.join(format!("keys-{format}.wav"));
        let out = ivrpay(&["dtmf", "generate", "0123456789*#ABCD", s(&file), "--format", format]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = ivrpay(&["dtmf", "detect", s(&file)]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "0123456789*#ABCD", "{format}");
    }
}

#[test]
fn detect_json_gives_times_and_levels() {
    let dir = scratch("json");
    let file = dir.join("keys.wav");
    let out = ivrpay(&[
        "dtmf",
        "generate",
        "58",
        s(&file),
        "--on-ms",
        "80",
        "--off-ms",
        "120",
        "--level-dbm0",
        "-20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ivrpay(&["dtmf", "detect", "--json", s(&file)]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["digits"], "58");
    let events = v["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    // 120 ms pause, 80 ms tone, 120 ms pause, 80 ms tone.
    for (e, (start, end)) in events.iter().zip([(120.0, 200.0), (320.0, 400.0)]) {
        let got = |k: &str| e[k].as_f64().expect("number");
        assert!((got("start_ms") - start).abs() < 2.0, "{e}");
        assert!((got("end_ms") - end).abs() < 2.0, "{e}");
        assert!((got("level_dbm0") + 20.0).abs() < 1.0, "{e}");
    }
    assert_eq!(events[0]["digit"], "5");
}

/// Masked output: same format, same length, aligned with the input, no digit left, and
/// speech around it untouched.
#[test]
fn mask_keeps_format_length_and_alignment() {
    let dir = scratch("mask");
    for (format, name) in
        [(SampleFormat::Ulaw, "ulaw"), (SampleFormat::Pcm16, "pcm"), (SampleFormat::Alaw, "alaw")]
    {
        // A chirp (not DTMF) around a key press.
        let mut samples: Vec<i16> = (0..4000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                (3000.0 * (2.0 * std::f32::consts::PI * (300.0 + 400.0 * t) * t).sin()) as i16
            })
            .collect();
        let keys = ivrpay_dtmf::key_string("7", &ivrpay_dtmf::Keying::default()).expect("keys");
        samples.extend_from_slice(&keys);
        samples.extend((0..4000).map(|i| ((i % 37) * 50) as i16));
        let input = dir.join(format!("in-{name}.wav"));
        let output = dir.join(format!("out-{name}.wav"));
        wav::write_path(&input, format, &samples).expect("write");
        let reread = wav::read_path(&input).expect("read back").samples;
        for mode in ["tone", "silence", "noise"] {
            let out = ivrpay(&["dtmf", "mask", s(&input), s(&output), "--mode", mode]);
            assert!(out.status.success(), "{}", stderr(&out));
            let summary: serde_json::Value =
                serde_json::from_str(&stdout(&out)).expect("JSON summary");
            assert_eq!(summary["mode"], mode);
            assert_eq!(summary["digits"], 1);
            let spans = summary["spans"].as_array().expect("spans");
            assert_eq!(spans.len(), 1, "{summary}");
            let masked = wav::read_path(&output).expect("masked file");
            assert_eq!(masked.format, format);
            assert_eq!(masked.samples.len(), reread.len());
            // Outside the span: bit-exact (the tool removed the lookahead delay).
            let start = (spans[0]["start_ms"].as_f64().expect("ms") * 8.0) as usize;
            let end = (spans[0]["end_ms"].as_f64().expect("ms") * 8.0).ceil() as usize;
            assert!(
                start <= 4000 + 800 && end >= 4000 + 1600,
                "span {start}..{end} covers the key"
            );
            assert_eq!(
                &masked.samples[..start - 1],
                &reread[..start - 1],
                "{name} {mode}: before the span"
            );
            assert_eq!(
                &masked.samples[end + 1..],
                &reread[end + 1..],
                "{name} {mode}: after the span"
            );
            let out = ivrpay(&["dtmf", "detect", s(&output)]);
            assert_eq!(stdout(&out).trim(), "", "{name} {mode}: no digit left");
        }
    }
}

#[test]
fn scan_reports_leaks_without_showing_them() {
    let dir = scratch("scan");
    let clean = dir.join("clean.wav");
    let leaky = dir.join("leaky.wav");
    let noise: Vec<i16> = (0..16000).map(|i| (((i * 7919) % 201) as i16 - 100) * 10).collect();
    wav::write_path(&clean, SampleFormat::Pcm16, &noise).expect("write");
    let out = ivrpay(&["dtmf", "generate", "4242", s(&leaky)]);
    assert!(out.status.success());
    let out = ivrpay(&["dtmf", "scan", s(&clean)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = ivrpay(&["dtmf", "scan", s(&clean), s(&leaky)]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert_eq!(report.lines().count(), 4, "{report}");
    assert!(
        !report.contains("'4'") && !report.contains("'2'"),
        "digits are hidden by default: {report}"
    );
    let out = ivrpay(&["dtmf", "scan", "--show-digits", s(&leaky)]);
    assert!(stdout(&out).contains("'4'"));
    // A 16 ms fragment is too short for a digit, but multimon-ng decodes that much: reported.
    let fragment = dir.join("fragment.wav");
    let mut x = vec![0i16; 1600];
    let spec = ivrpay_dtmf::ToneSpec::new(ivrpay_dtmf::Digit::ALL[5], 128);
    let mut f = vec![0f32; 128];
    spec.add_to(&mut f);
    x.extend(ivrpay_dtmf::to_i16(&f));
    x.extend(vec![0i16; 1600]);
    wav::write_path(&fragment, SampleFormat::Pcm16, &x).expect("write");
    let out = ivrpay(&["dtmf", "scan", s(&fragment)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("DTMF-like fragment"), "{}", stdout(&out));
}

/// Anything but 8 kHz mono gets one line naming the problem and exit status 2.
#[test]
fn bad_input_gets_one_clear_line() {
    let dir = scratch("bad");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wav", Vec::new(), "empty"),
        ("text.wav", b"hello, this is not a wav file at all".to_vec(), "RIFF"),
        ("stereo.wav", wav_header(1, 2, 8000, 16), "channel"),
        ("wideband.wav", wav_header(1, 1, 16000, 16), "16000 Hz"),
        ("float.wav", wav_header(3, 1, 8000, 32), "format"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        for cmd in [vec!["dtmf", "detect", s(&path)], vec!["dtmf", "scan", s(&path)]] {
            let out = ivrpay(&cmd);
            assert_eq!(out.status.code(), Some(2), "{name}");
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(err.contains(expected), "{name}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
    }
    let out = ivrpay(&["dtmf", "detect", s(&dir.join("missing.wav"))]);
    assert_eq!(out.status.code(), Some(2));
    let out = ivrpay(&["dtmf", "generate", "12x", s(&dir.join("x.wav"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a DTMF key"));
}

/// A header with the given format tag, channels, rate and bits, and a few bytes of data.
fn wav_header(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let block = channels * bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36u32 + 8).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v
}
