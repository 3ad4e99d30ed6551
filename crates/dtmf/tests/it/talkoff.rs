//! Talk-off: speech and music must never produce a digit.
//!
//! The corpus is real 8 kHz speech and music from Debian's `asterisk-core-sounds-en-wav` and
//! `asterisk-moh-opsound-wav` packages, prepared by `test-audio/prepare-talkoff.sh` (the
//! test script runs it and sets `IVRPAY_TALKOFF_CORPUS`).

use ivrpay_dtmf::{Masker, MaskerConfig, MaskerEvent};

use crate::signal::{detect, digit_string};

fn corpus() -> Vec<(String, Vec<i16>)> {
    let dir = std::env::var_os("IVRPAY_TALKOFF_CORPUS").unwrap_or_else(|| {
        panic!("IVRPAY_TALKOFF_CORPUS is not set: run scripts/test.sh, which prepares the corpus")
    });
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read talk-off corpus {dir:?}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let wav =
                ivrpay_audio::wav::read_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), wav.samples)
        })
        .collect()
}

#[test]
fn speech_and_music_give_no_digit_and_little_masking() {
    let corpus = corpus();
    let total: usize = corpus.iter().map(|(_, s)| s.len()).sum();
    let minutes = total as f64 / 8000.0 / 60.0;
    assert!(
        minutes >= 30.0,
        "talk-off corpus holds only {minutes:.1} minutes; at least 30 are needed"
    );
    let mut false_digits = Vec::new();
    let mut masked = 0u64;
    let mut false_masks = 0usize;
    for (name, samples) in &corpus {
        let digits = digit_string(&detect(samples));
        if !digits.is_empty() {
            false_digits.push(format!("{name}: {digits}"));
        }
        let mut masker = Masker::new(MaskerConfig::default());
        let mut out = vec![0i16; 160];
        for packet in samples.chunks(160) {
            masker.process(packet, &mut out[..packet.len()]);
        }
        masker.finish();
        while let Some(e) = masker.poll_event() {
            if let MaskerEvent::Masked(span) = e {
                masked += span.len();
                false_masks += 1;
            }
        }
    }
    let masked_s = masked as f64 / 8000.0;
    println!(
        "talk-off: {minutes:.1} min of speech and music, {} false digits; masker: {false_masks} spans, \
         {masked_s:.2} s masked ({:.2} s per hour)",
        false_digits.len(),
        masked_s / (minutes / 60.0)
    );
    assert!(false_digits.is_empty(), "false digits: {false_digits:?}");
}
