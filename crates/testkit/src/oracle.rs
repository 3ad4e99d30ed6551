//! Independent DTMF decoders: spandsp's `dtmf_rx` (the detector rtpengine and FreeSWITCH
//! use) and multimon-ng (a lenient decoder that hears 17 ms fragments: the eavesdropper).
//!
//! The test script builds and installs them (`../shared/tools/ref-dtmf/build.sh`) and sets
//! `IVRPAY_SPANDSP_DECODE`. A missing oracle fails the test: a leak test that skipped its
//! decoders would prove nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn spandsp_binary() -> PathBuf {
    let path = std::env::var_os("IVRPAY_SPANDSP_DECODE").unwrap_or_else(|| {
        panic!(
            "IVRPAY_SPANDSP_DECODE is not set: run the test script (scripts/test.sh), which builds \
             the spandsp oracle with ../shared/tools/ref-dtmf/build.sh"
        )
    });
    PathBuf::from(path)
}

fn raw_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn run(command: Command, package: &str, input: &[u8]) -> String {
    String::from_utf8_lossy(&run_bytes(command, package, input)).into_owned()
}

/// Digits spandsp finds. `relaxed` widens its twist to 10/10 dB and its threshold to −50 dBm0.
pub fn spandsp(samples: &[i16], relaxed: bool) -> String {
    let mut cmd = Command::new(spandsp_binary());
    if relaxed {
        cmd.args(["-T", "10", "-R", "10", "-L", "-50"]);
    }
    cmd.arg("-");
    let out = run(
        cmd,
        "libspandsp-dev (built by ../shared/tools/ref-dtmf/build.sh)",
        &raw_bytes(samples),
    );
    out.lines()
        .find_map(|l| l.strip_prefix("DIGITS"))
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| panic!("spandsp oracle printed no DIGITS line: {out}"))
}

/// Digits multimon-ng finds. It works at 22.05 kHz, so sox resamples first.
pub fn multimon(samples: &[i16]) -> String {
    let mut sox = Command::new("sox");
    sox.args(["-q", "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", "8000", "-"]);
    sox.args(["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", "22050", "-"]);
    let resampled = run_bytes(sox, "sox", &raw_bytes(samples));
    let mut mm = Command::new("multimon-ng");
    mm.args(["-q", "-c", "-a", "DTMF", "-t", "raw", "-"]);
    let out = run(mm, "multimon-ng", &resampled);
    out.lines().filter_map(|l| l.strip_prefix("DTMF: ")).map(|d| d.trim()).collect()
}

/// Runs `command` with `input` on stdin. A missing program fails with the Debian package that
/// provides it (`package`): an oracle that did not run must never pass as "no digit found".
fn run_bytes(mut command: Command, package: &str, input: &[u8]) -> Vec<u8> {
    let name = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {name}: {e}; install the Debian package {package} (scripts/test.sh does)")
        });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("command runs");
    writer.join().expect("writer thread").expect("command reads its input");
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}
