//! Helpers shared by the WAV tests: hand-built files, a scratch directory and the `sox` runner.

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

pub(crate) const PCM: u16 = 1;
pub(crate) const ALAW: u16 = 6;
pub(crate) const MULAW: u16 = 7;
pub(crate) const EXTENSIBLE: u16 = 0xFFFE;

/// A RIFF/WAVE file holding `chunks` in order, each padded to an even length as the spec says.
pub(crate) fn wav_file(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data) in chunks {
        body.extend_from_slice(*id);
        body.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    file.extend(body);
    file
}

/// A 16-byte `fmt ` chunk body.
pub(crate) fn fmt(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out
}

/// A valid 8 kHz mono `fmt ` body for `tag` (PCM 16-bit, G.711 8-bit).
pub(crate) fn mono_fmt(tag: u16) -> Vec<u8> {
    if tag == PCM { fmt(PCM, 1, 8000, 2, 16) } else { fmt(tag, 1, 8000, 1, 8) }
}

/// A 40-byte `WAVE_FORMAT_EXTENSIBLE` fmt body whose sub-format GUID wraps `subformat`.
pub(crate) fn extensible_fmt(subformat: u16, block_align: u16, bits: u16) -> Vec<u8> {
    let mut out = fmt(EXTENSIBLE, 1, 8000, block_align, bits);
    out.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    out.extend_from_slice(&bits.to_le_bytes()); // valid bits per sample
    out.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
    out.extend_from_slice(&u32::from(subformat).to_le_bytes());
    out.extend_from_slice(&[
        0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    out
}

/// A scratch directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join(format!("ivrpay-audio-{name}-{}-{unique}", std::process::id()));
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `sox` with `args`, failing the test with a clear message if sox is missing or fails.
pub(crate) fn run_sox(args: &[&str]) -> Output {
    let output = match Command::new("sox").args(args).output() {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "the `sox` command is not installed: these tests need the `sox` package \
             (e.g. `apt-get install sox`)"
        ),
        Err(err) => panic!("cannot run sox: {err}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sox {args:?} failed: {stderr}");
    output
}

/// Runs `sox` with `args` and returns its stdout; a warning from sox fails the test.
pub(crate) fn sox(args: &[&str]) -> Vec<u8> {
    let output = run_sox(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().is_empty(), "sox {args:?} warned: {stderr}");
    output.stdout
}

/// What sox decodes `path` to, as 16-bit native samples.
pub(crate) fn sox_decode(path: &Path) -> Vec<i16> {
    let path = path.to_str().unwrap();
    let raw = sox(&[path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"]);
    assert_eq!(raw.len() % 2, 0, "sox produced an odd number of bytes");
    raw.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect()
}

/// A test signal touching every interesting region: silence, both extremes, small values around
/// zero and a swept tone.
pub(crate) fn test_signal() -> Vec<i16> {
    let mut samples = vec![0, 1, -1, 2, -2, 7, -8, i16::MAX, i16::MIN, i16::MIN + 1];
    samples.extend((0..1000).map(|n| {
        let t = f64::from(n) / 8000.0;
        (20_000.0 * (2.0 * std::f64::consts::PI * (300.0 + 2.0 * f64::from(n)) * t).sin()) as i16
    }));
    samples
}
