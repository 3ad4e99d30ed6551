//! Every kind of bad header gives the error naming it, as one line, and never a panic.

use ivrpay_audio::wav::{self, FourCc, SampleFormat, WavError};

use crate::support::{ALAW, EXTENSIBLE, MULAW, PCM, extensible_fmt, fmt, mono_fmt, wav_file};

fn parse_err(bytes: &[u8]) -> WavError {
    match wav::parse(bytes) {
        Ok(wav) => {
            panic!("expected an error, parsed {:?} with {} samples", wav.format, wav.samples.len())
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty() && !message.contains('\n'), "not one line: {message:?}");
            err
        }
    }
}

/// A file with `fmt_body` as its fmt chunk and a little audio.
fn with_fmt(fmt_body: &[u8]) -> Vec<u8> {
    wav_file(&[(b"fmt ", fmt_body), (b"data", &[0; 16])])
}

#[test]
fn empty_file() {
    assert!(matches!(parse_err(b""), WavError::Empty));
}

#[test]
fn not_riff() {
    let err = parse_err(b"RIFX\x24\x00\x00\x00WAVEfmt ");
    assert!(matches!(err, WavError::NotRiff { found: FourCc(id) } if id == *b"RIFX"), "{err:?}");
    assert_eq!(err.to_string(), r#"not a RIFF WAV file: it starts with "RIFX" instead of "RIFF""#);

    let err = parse_err(b"\x00\xffID3 text");
    assert!(err.to_string().contains(r#""\x00\xffID""#), "{err}");
}

#[test]
fn not_wave() {
    let err = parse_err(b"RIFF\x04\x00\x00\x00AVI ");
    assert!(matches!(err, WavError::NotWave { found: FourCc(id) } if id == *b"AVI "), "{err:?}");
}

#[test]
fn truncated_riff_header() {
    for bytes in [&b"RI"[..], b"RIFF", b"RIFF\x04\x00\x00\x00WAV"] {
        let err = parse_err(bytes);
        assert!(matches!(err, WavError::TruncatedHeader { file_len } if file_len == bytes.len()));
    }
}

#[test]
fn truncated_chunk_header() {
    let mut file = wav_file(&[(b"fmt ", &mono_fmt(PCM))]);
    file.extend_from_slice(b"dat");
    assert!(matches!(parse_err(&file), WavError::TruncatedHeader { .. }));
}

#[test]
fn truncated_fmt_chunk() {
    let mut file = wav_file(&[(b"fmt ", &mono_fmt(PCM))]);
    file.truncate(file.len() - 6);
    let err = parse_err(&file);
    assert!(
        matches!(err, WavError::TruncatedChunk { id: FourCc(id), declared: 16, available: 10 } if id == *b"fmt "),
        "{err:?}"
    );
}

#[test]
fn oversized_unknown_chunk_before_the_data() {
    let mut file = wav_file(&[(b"LIST", &[0; 4])]);
    file[16..20].copy_from_slice(&1000u32.to_le_bytes());
    let err = parse_err(&file);
    assert!(
        matches!(err, WavError::TruncatedChunk { declared: 1000, available: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn fmt_chunk_too_small() {
    let err = parse_err(&with_fmt(&mono_fmt(PCM)[..14]));
    assert!(matches!(err, WavError::FmtTooSmall { size: 14, needed: 16 }), "{err:?}");

    let err = parse_err(&with_fmt(&extensible_fmt(PCM, 2, 16)[..18]));
    assert!(matches!(err, WavError::FmtTooSmall { size: 18, needed: 40 }), "{err:?}");
}

#[test]
fn missing_fmt_or_data() {
    assert!(matches!(parse_err(&wav_file(&[(b"data", &[0; 4])])), WavError::MissingFmt));
    assert!(matches!(parse_err(&wav_file(&[])), WavError::MissingFmt));
    let fmt_only = wav_file(&[(b"fmt ", &mono_fmt(PCM)), (b"LIST", b"x")]);
    assert!(matches!(parse_err(&fmt_only), WavError::MissingData));
}

#[test]
fn unsupported_format_tags() {
    let err = parse_err(&with_fmt(&fmt(3, 1, 8000, 4, 32)));
    assert!(matches!(err, WavError::UnsupportedFormat { tag: 3 }), "{err:?}");
    assert!(err.to_string().contains("IEEE float"), "{err}");

    let err = parse_err(&with_fmt(&extensible_fmt(0x55, 1, 8)));
    assert!(matches!(err, WavError::UnsupportedFormat { tag: 0x55 }), "{err:?}");

    let mut odd_guid = extensible_fmt(PCM, 2, 16);
    odd_guid[39] ^= 1;
    let err = parse_err(&with_fmt(&odd_guid));
    assert!(matches!(err, WavError::UnsupportedSubformat { .. }), "{err:?}");
    assert!(err.to_string().contains("00000001-0000-0010-8000-00aa00389b70"), "{err}");
}

#[test]
fn stereo() {
    let err = parse_err(&with_fmt(&fmt(PCM, 2, 8000, 4, 16)));
    assert!(matches!(err, WavError::UnsupportedChannels { channels: 2 }), "{err:?}");
    let err = parse_err(&with_fmt(&fmt(MULAW, 0, 8000, 1, 8)));
    assert!(matches!(err, WavError::UnsupportedChannels { channels: 0 }), "{err:?}");
}

#[test]
fn wideband() {
    let err = parse_err(&with_fmt(&fmt(PCM, 1, 16000, 2, 16)));
    assert!(matches!(err, WavError::UnsupportedSampleRate { rate: 16000 }), "{err:?}");
    assert_eq!(err.to_string(), "sample rate 16000 Hz is not supported: ivrpay needs 8000 Hz");
}

#[test]
fn wrong_sample_sizes() {
    let err = parse_err(&with_fmt(&fmt(PCM, 1, 8000, 3, 24)));
    assert!(
        matches!(err, WavError::UnsupportedBitsPerSample { format: SampleFormat::Pcm16, bits: 24 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "24-bit PCM is not supported: PCM WAV must be 16-bit");

    let err = parse_err(&with_fmt(&fmt(ALAW, 1, 8000, 2, 16)));
    assert!(
        matches!(err, WavError::UnsupportedBitsPerSample { format: SampleFormat::Alaw, bits: 16 }),
        "{err:?}"
    );
    let err = parse_err(&with_fmt(&fmt(PCM, 1, 8000, 1, 8)));
    assert!(matches!(err, WavError::UnsupportedBitsPerSample { bits: 8, .. }), "{err:?}");
}

#[test]
fn block_align_mismatch() {
    let err = parse_err(&with_fmt(&fmt(PCM, 1, 8000, 4, 16)));
    assert!(matches!(err, WavError::BlockAlignMismatch { block_align: 4, expected: 2 }), "{err:?}");
    let err = parse_err(&with_fmt(&extensible_fmt(MULAW, 0, 8)));
    assert!(matches!(err, WavError::BlockAlignMismatch { block_align: 0, expected: 1 }), "{err:?}");
}

/// An odd-sized chunk without its pad byte shifts every later chunk header by one.
#[test]
fn odd_chunk_without_its_pad_byte() {
    let mut file = b"RIFF\x00\x00\x00\x00WAVEJUNK\x03\x00\x00\x00odd".to_vec();
    file.extend_from_slice(&wav_file(&[(b"fmt ", &mono_fmt(PCM)), (b"data", &[0; 4])])[12..]);
    let err = parse_err(&file);
    assert!(
        matches!(err, WavError::TruncatedChunk { id: FourCc(id), .. } if id == *b"mt \x10"),
        "{err:?}"
    );
}

#[test]
fn extensible_tag_alone_is_not_a_format() {
    let err = parse_err(&with_fmt(&fmt(EXTENSIBLE, 1, 8000, 2, 16)));
    assert!(matches!(err, WavError::FmtTooSmall { size: 16, needed: 40 }), "{err:?}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = wav::read_path("/nonexistent/ivrpay-audio/missing.wav").unwrap_err();
    assert!(matches!(err, WavError::Io(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn writing_reports_io_errors() {
    let err = wav::write_path("/nonexistent/ivrpay-audio/out.wav", SampleFormat::Pcm16, &[0]);
    assert!(matches!(err, Err(WavError::Io(_))), "{err:?}");
}
