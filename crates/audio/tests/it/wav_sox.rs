//! Interoperability with SoX, an independent WAV reader and writer: we read what it writes and
//! it reads what we write, sample for sample. These tests need the `sox` package.

use ivrpay_audio::wav::{self, SampleFormat, WavError};

use crate::support::{TempDir, run_sox, sox, sox_decode, test_signal};

/// SoX's name for each format's encoding, and the bits it stores.
fn sox_encoding(format: SampleFormat) -> [&'static str; 4] {
    match format {
        SampleFormat::Pcm16 => ["-e", "signed-integer", "-b", "16"],
        SampleFormat::Ulaw => ["-e", "u-law", "-b", "8"],
        SampleFormat::Alaw => ["-e", "a-law", "-b", "8"],
    }
}

fn sox_tone(path: &std::path::Path, rate: &str, channels: &str, encoding: &[&str]) {
    let mut args = vec!["-n", "-r", rate, "-c", channels];
    args.extend_from_slice(encoding);
    args.extend_from_slice(&[path.to_str().unwrap(), "synth", "0.1", "sine", "1000"]);
    sox(&args);
}

#[test]
fn files_written_by_sox_read_as_sox_decodes_them() {
    let dir = TempDir::new("from-sox");
    for format in [SampleFormat::Pcm16, SampleFormat::Ulaw, SampleFormat::Alaw] {
        let path = dir.path(&format!("{format:?}.wav"));
        sox_tone(&path, "8000", "1", &sox_encoding(format));
        let wav = wav::read_path(&path).unwrap();
        assert_eq!(wav.format, format);
        assert!(!wav.truncated, "{format:?}");
        assert_eq!(wav.samples.len(), 800, "{format:?}: 0.1 s at 8 kHz");
        assert_eq!(wav.samples, sox_decode(&path), "{format:?}");
    }
}

/// SoX writing to a pipe cannot seek back, so it declares a 0x7FFFF000-byte data chunk.
#[test]
fn streamed_sox_output_is_read_to_the_end() {
    for format in [SampleFormat::Pcm16, SampleFormat::Ulaw] {
        let mut args = vec!["-n", "-r", "8000", "-c", "1"];
        args.extend_from_slice(&sox_encoding(format));
        args.extend_from_slice(&["-t", "wav", "-", "synth", "0.1", "sine", "1000"]);
        let bytes = run_sox(&args).stdout; // sox warns that the header will be wrong
        let wav = wav::parse(&bytes).unwrap();
        assert_eq!(wav.format, format);
        assert_eq!(wav.samples.len(), 800, "{format:?}");
        assert!(wav.truncated, "{format:?}: the header promised more than the pipe carried");
    }
}

#[test]
fn files_we_write_are_read_by_sox_without_warnings() {
    let dir = TempDir::new("to-sox");
    let signal = test_signal();
    for format in [SampleFormat::Pcm16, SampleFormat::Ulaw, SampleFormat::Alaw] {
        for samples in [&signal[..], &signal[..11]] {
            let path = dir.path(&format!("{format:?}-{}.wav", samples.len()));
            wav::write_path(&path, format, samples).unwrap();
            let ours = wav::read_path(&path).unwrap();
            assert_eq!(sox_decode(&path), ours.samples, "{format:?}, {} samples", samples.len());
        }
    }
}

#[test]
fn sox_files_at_other_rates_or_in_stereo_are_refused() {
    let dir = TempDir::new("sox-refused");
    let wideband = dir.path("16k.wav");
    sox_tone(&wideband, "16000", "1", &sox_encoding(SampleFormat::Pcm16));
    let err = wav::read_path(&wideband).unwrap_err();
    assert!(matches!(err, WavError::UnsupportedSampleRate { rate: 16000 }), "{err:?}");

    let stereo = dir.path("stereo.wav");
    sox_tone(&stereo, "8000", "2", &sox_encoding(SampleFormat::Ulaw));
    let err = wav::read_path(&stereo).unwrap_err();
    assert!(matches!(err, WavError::UnsupportedChannels { channels: 2 }), "{err:?}");
}
