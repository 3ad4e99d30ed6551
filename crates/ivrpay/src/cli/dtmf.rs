#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "command-line tools talk to the terminal"
)]
//! `ivrpay dtmf detect|mask|generate|scan`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ivrpay_audio::wav::{self, SampleFormat, Wav};
use ivrpay_dtmf::{
    Detector, DetectorEvent, Keying, MaskMode, Masker, MaskerConfig, MaskerEvent, SAMPLE_RATE,
    Span, Tone, key_string,
};
use serde::Serialize;

use super::EXIT_ERROR;

/// Frame size the tools feed the engine with: one 20 ms RTP packet, as on the live path.
const FRAME: usize = 160;

#[derive(Debug, Subcommand)]
pub(crate) enum DtmfCommand {
    /// Print the DTMF digits in a recording.
    Detect {
        file: PathBuf,
        /// Print one JSON object with the digits and each digit's start, end and level.
        #[arg(long)]
        json: bool,
    },
    /// Mask DTMF in a recording: OUT gets the same format and length, time-aligned with IN.
    /// Prints a JSON summary of the masked spans.
    Mask {
        input: PathBuf,
        output: PathBuf,
        /// What replaces a tone.
        #[arg(long, default_value = "tone", value_parser = parse_mode)]
        mode: MaskMode,
        /// How far the masker looks ahead (the live path's added delay), in ms.
        #[arg(long, default_value_t = 20.0)]
        lookahead_ms: f32,
    },
    /// Write a WAV file of keyed digits.
    Generate(GenerateArgs),
    /// Audit recordings for leaked card digits: reports every DTMF digit and every
    /// DTMF-like fragment (16 ms or longer: what a lenient decoder can still read). Exit
    /// status 1 when anything is found.
    Scan {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print which key each digit is (card data: keep the output safe).
        #[arg(long)]
        show_digits: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Keys to press: 0-9, *, #, A-D.
    digits: String,
    output: PathBuf,
    /// Tone length of each key, ms.
    #[arg(long, default_value_t = 100.0)]
    on_ms: f32,
    /// Pause before, between and after keys, ms.
    #[arg(long, default_value_t = 100.0)]
    off_ms: f32,
    /// Level of the louder tone, dBm0.
    #[arg(long, default_value_t = -10.0, allow_hyphen_values = true)]
    level_dbm0: f32,
    /// High-group level minus low-group level, dB.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    twist_db: f32,
    /// Sample format of the file.
    #[arg(long, default_value = "pcm", value_parser = parse_format)]
    format: SampleFormat,
}

fn parse_mode(s: &str) -> Result<MaskMode, String> {
    s.parse().map_err(|e: ivrpay_dtmf::UnknownMaskMode| e.to_string())
}

fn parse_format(s: &str) -> Result<SampleFormat, String> {
    match s {
        "pcm" => Ok(SampleFormat::Pcm16),
        "ulaw" => Ok(SampleFormat::Ulaw),
        "alaw" => Ok(SampleFormat::Alaw),
        _ => Err("expected pcm, ulaw or alaw".into()),
    }
}

pub(crate) fn run(command: DtmfCommand) -> ExitCode {
    let result = match command {
        DtmfCommand::Detect { file, json } => detect(&file, json),
        DtmfCommand::Mask { input, output, mode, lookahead_ms } => {
            mask(&input, &output, mode, lookahead_ms)
        }
        DtmfCommand::Generate(args) => generate(&args),
        DtmfCommand::Scan { files, show_digits } => scan(&files, show_digits),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ivrpay: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn read(path: &Path) -> Result<Wav, String> {
    let wav = wav::read_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if wav.truncated {
        eprintln!(
            "ivrpay: warning: {}: the data chunk is cut short; using what is there",
            path.display()
        );
    }
    Ok(wav)
}

fn ms(samples: u64) -> f64 {
    samples as f64 * 1000.0 / f64::from(SAMPLE_RATE)
}

/// Runs the detector over a whole recording in 20 ms frames.
fn detect_tones(samples: &[i16]) -> Vec<Tone> {
    let mut detector = Detector::default();
    let mut tones = Vec::new();
    let mut drain = |d: &mut Detector| {
        while let Some(e) = d.poll_event() {
            if let DetectorEvent::Ended(t) = e {
                tones.push(t);
            }
        }
    };
    for frame in samples.chunks(FRAME) {
        detector.process(frame);
        drain(&mut detector);
    }
    detector.finish();
    drain(&mut detector);
    tones
}

#[derive(Serialize)]
struct DetectReport {
    digits: String,
    events: Vec<DigitReport>,
}

#[derive(Serialize)]
struct DigitReport {
    digit: String,
    start_ms: f64,
    end_ms: f64,
    level_dbm0: f64,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn detect(path: &Path, json: bool) -> Result<ExitCode, String> {
    let wav = read(path)?;
    let tones = detect_tones(&wav.samples);
    let digits: String = tones.iter().map(|t| t.digit.as_char()).collect();
    let mut out = std::io::stdout().lock();
    let result = if json {
        let report = DetectReport {
            digits,
            events: tones
                .iter()
                .map(|t| DigitReport {
                    digit: t.digit.as_char().to_string(),
                    start_ms: round1(ms(t.start)),
                    end_ms: round1(ms(t.end)),
                    level_dbm0: round1(f64::from(t.level_dbm0)),
                })
                .collect(),
        };
        serde_json::to_writer(&mut out, &report)
            .map_err(|e| e.to_string())
            .and_then(|()| writeln!(out).map_err(|e| e.to_string()))
    } else {
        writeln!(out, "{digits}").map_err(|e| e.to_string())
    };
    result.map(|()| ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct MaskReport {
    mode: &'static str,
    lookahead_ms: f64,
    /// Digits the masker confirmed (how many, never which).
    digits: usize,
    masked_ms: f64,
    spans: Vec<SpanReport>,
}

#[derive(Serialize)]
struct SpanReport {
    start_ms: f64,
    end_ms: f64,
}

/// Masks a whole recording; returns the output aligned with the input, the spans and the
/// number of digits.
fn mask_samples(samples: &[i16], config: MaskerConfig) -> (Vec<i16>, Vec<Span>, usize) {
    let mut masker = Masker::new(config);
    // The lookahead delays the output: feed that much silence after the end, then drop it
    // from the front, so the output lines up with the input sample for sample.
    let mut padded = samples.to_vec();
    padded.resize(samples.len() + config.lookahead, 0);
    let mut out = vec![0i16; padded.len()];
    for (input, output) in padded.chunks(FRAME).zip(out.chunks_mut(FRAME)) {
        masker.process(input, output);
    }
    masker.finish();
    let (mut spans, mut digits) = (Vec::new(), 0);
    while let Some(event) = masker.poll_event() {
        match event {
            MaskerEvent::Masked(span) => spans.push(span),
            MaskerEvent::Digit(DetectorEvent::Ended(_)) => digits += 1,
            MaskerEvent::Digit(DetectorEvent::Began { .. }) => {}
        }
    }
    out.drain(..config.lookahead);
    spans.sort_by_key(|s| s.start);
    (out, spans, digits)
}

fn mask(
    input: &Path,
    output: &Path,
    mode: MaskMode,
    lookahead_ms: f32,
) -> Result<ExitCode, String> {
    if !(0.0..=1000.0).contains(&lookahead_ms) {
        return Err(format!("--lookahead-ms {lookahead_ms} is out of range (0 to 1000)"));
    }
    let wav = read(input)?;
    let config = MaskerConfig { mode, ..MaskerConfig::default() }.with_lookahead_ms(lookahead_ms);
    let (masked, spans, digits) = mask_samples(&wav.samples, config);
    wav::write_path(output, wav.format, &masked)
        .map_err(|e| format!("{}: {e}", output.display()))?;
    let report = MaskReport {
        mode: mode.name(),
        lookahead_ms: f64::from(lookahead_ms),
        digits,
        masked_ms: round1(spans.iter().map(|s| ms(s.len())).sum()),
        spans: spans
            .iter()
            .map(|s| SpanReport { start_ms: round1(ms(s.start)), end_ms: round1(ms(s.end)) })
            .collect(),
    };
    let text = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn generate(args: &GenerateArgs) -> Result<ExitCode, String> {
    if !(1.0..=10_000.0).contains(&args.on_ms) || !(0.0..=10_000.0).contains(&args.off_ms) {
        return Err("--on-ms must be 1 to 10000 and --off-ms 0 to 10000".into());
    }
    if !(-80.0..=3.0).contains(&args.level_dbm0) || !(-40.0..=40.0).contains(&args.twist_db) {
        return Err("--level-dbm0 must be -80 to 3 and --twist-db -40 to 40".into());
    }
    let keying = Keying {
        on_ms: args.on_ms,
        off_ms: args.off_ms,
        level_dbm0: args.level_dbm0,
        twist_db: args.twist_db,
    };
    let samples = key_string(&args.digits, &keying).map_err(|e| e.to_string())?;
    wav::write_path(&args.output, args.format, &samples)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn scan(files: &[PathBuf], show_digits: bool) -> Result<ExitCode, String> {
    let mut found = 0usize;
    let mut out = std::io::stdout().lock();
    for path in files {
        let wav = read(path)?;
        // Digits the detector confirms, and fragments the masker's suspect test marks that
        // are not part of a confirmed digit: the shards an eavesdropper might still use.
        let tones = detect_tones(&wav.samples);
        let config = MaskerConfig { lookahead: 0, ..MaskerConfig::default() };
        let (_, spans, _) = mask_samples(&wav.samples, config);
        let name = path.display();
        for t in &tones {
            let key = if show_digits {
                format!("'{}'", t.digit.as_char())
            } else {
                "(hidden)".to_string()
            };
            writeln!(
                out,
                "{name}: DTMF digit {key} at {:.3}-{:.3} s, {:.1} dBm0",
                ms(t.start) / 1000.0,
                ms(t.end) / 1000.0,
                t.level_dbm0
            )
            .map_err(|e| e.to_string())?;
        }
        let fragments =
            spans.iter().filter(|s| !tones.iter().any(|t| t.start < s.end && t.end > s.start));
        for s in fragments {
            writeln!(
                out,
                "{name}: DTMF-like fragment at {:.3}-{:.3} s",
                ms(s.start) / 1000.0,
                ms(s.end) / 1000.0
            )
            .map_err(|e| e.to_string())?;
            found += 1;
        }
        found += tones.len();
    }
    Ok(if found > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
