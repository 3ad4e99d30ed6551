//! Writing then reading gives the samples back (through G.711 where the format is G.711), and
//! the reader copes with the layouts real writers produce.

use ivrpay_audio::g711::Law;
use ivrpay_audio::wav::{self, SampleFormat, Wav};

use crate::support::{ALAW, MULAW, PCM, TempDir, extensible_fmt, mono_fmt, test_signal, wav_file};

const FORMATS: [SampleFormat; 3] = [SampleFormat::Pcm16, SampleFormat::Ulaw, SampleFormat::Alaw];

/// What a file in `format` holding `samples` reads back as.
fn expected(format: SampleFormat, samples: &[i16]) -> Vec<i16> {
    let mut expected = samples.to_vec();
    if let Some(law) = format.law() {
        law.round_trip_in_place(&mut expected);
    }
    expected
}

fn written(format: SampleFormat, samples: &[i16]) -> Vec<u8> {
    let mut bytes = Vec::new();
    wav::write_to(&mut bytes, format, samples).unwrap();
    bytes
}

#[test]
fn every_format_round_trips_through_memory() {
    let signal = test_signal();
    for format in FORMATS {
        for samples in [&signal[..], &signal[..7], &[]] {
            let wav = wav::parse(&written(format, samples)).unwrap();
            let want = Wav { format, samples: expected(format, samples), truncated: false };
            assert_eq!(wav, want, "{format:?} with {} samples", samples.len());
        }
    }
}

#[test]
fn every_format_round_trips_through_a_file() {
    let dir = TempDir::new("roundtrip");
    let signal = test_signal();
    for format in FORMATS {
        let path = dir.path(&format!("{format:?}.wav"));
        wav::write_path(&path, format, &signal).unwrap();
        let from_path = wav::read_path(&path).unwrap();
        let from_reader = wav::read_from(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(from_path.samples, expected(format, &signal), "{format:?}");
        assert_eq!(from_path, from_reader, "{format:?}");
    }
}

#[test]
fn pcm_header_is_the_canonical_44_bytes() {
    let bytes = written(SampleFormat::Pcm16, &[0x0102, -2]);
    let mut want = b"RIFF".to_vec();
    want.extend_from_slice(&40u32.to_le_bytes());
    want.extend_from_slice(b"WAVEfmt ");
    want.extend_from_slice(&16u32.to_le_bytes());
    want.extend_from_slice(&mono_fmt(PCM));
    want.extend_from_slice(b"data");
    want.extend_from_slice(&4u32.to_le_bytes());
    want.extend_from_slice(&[0x02, 0x01, 0xFE, 0xFF]);
    assert_eq!(bytes, want);
}

#[test]
fn g711_header_has_cb_size_fact_chunk_and_pad_byte() {
    for (format, tag, law) in
        [(SampleFormat::Ulaw, MULAW, Law::Ulaw), (SampleFormat::Alaw, ALAW, Law::Alaw)]
    {
        let samples = [1000, -1000, 0];
        let bytes = written(format, &samples);
        let mut fmt = mono_fmt(tag);
        fmt.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        let codes: Vec<u8> = samples.iter().map(|&s| law.encode(s)).collect();
        let want = wav_file(&[(b"fmt ", &fmt), (b"fact", &3u32.to_le_bytes()), (b"data", &codes)]);
        assert_eq!(bytes, want, "{format:?}");
        assert_eq!(bytes.len(), 58 + 3 + 1, "{format:?}: header, data, pad byte");
    }
}

#[test]
fn unknown_chunks_are_skipped_including_odd_sized_ones() {
    let samples = [100i16, -100, 5];
    let pcm: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let file = wav_file(&[
        (b"JUNK", b"odd"),
        (b"fmt ", &mono_fmt(PCM)),
        (b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00"),
        (b"data", &pcm),
        (b"LIST", b"trailing chunks are never read"),
    ]);
    let wav = wav::parse(&file).unwrap();
    assert_eq!(
        wav,
        Wav { format: SampleFormat::Pcm16, samples: samples.to_vec(), truncated: false }
    );
}

#[test]
fn extensible_files_with_plain_subformats_are_read() {
    for (format, tag) in
        [(SampleFormat::Pcm16, PCM), (SampleFormat::Ulaw, MULAW), (SampleFormat::Alaw, ALAW)]
    {
        let bytes_per_sample = format.bytes_per_sample();
        let data = vec![0x55u8; 8];
        let file = wav_file(&[
            (b"fmt ", &extensible_fmt(tag, bytes_per_sample, bytes_per_sample * 8)),
            (b"data", &data),
        ]);
        let wav = wav::parse(&file).unwrap();
        assert_eq!(wav.format, format);
        assert_eq!(wav.samples.len(), 8 / usize::from(bytes_per_sample), "{format:?}");
        assert!(!wav.truncated);
    }
}

/// Streaming writers cannot go back to fix the sizes: the data runs to the end of the file.
#[test]
fn oversized_data_chunk_is_read_to_the_end_and_flagged() {
    for declared in [u32::MAX, 0x7FFF_F000, 9] {
        let mut file = wav_file(&[(b"fmt ", &mono_fmt(MULAW)), (b"data", &[0xFF; 8])]);
        let size_at = file.len() - 8 - 4;
        file[size_at..size_at + 4].copy_from_slice(&declared.to_le_bytes());
        let wav = wav::parse(&file).unwrap();
        assert_eq!(wav, Wav { format: SampleFormat::Ulaw, samples: vec![0; 8], truncated: true });
    }
}

#[test]
fn partial_trailing_pcm_sample_is_dropped_and_flagged() {
    let file = wav_file(&[(b"fmt ", &mono_fmt(PCM)), (b"data", &[1, 0, 2, 0, 3])]);
    let wav = wav::parse(&file).unwrap();
    assert_eq!(wav, Wav { format: SampleFormat::Pcm16, samples: vec![1, 2], truncated: true });
}

#[test]
fn data_shorter_than_the_file_stops_at_its_declared_size() {
    let mut file = wav_file(&[(b"fmt ", &mono_fmt(PCM)), (b"data", &[1, 0, 2, 0])]);
    file.extend_from_slice(b"garbage after the data chunk");
    let wav = wav::parse(&file).unwrap();
    assert_eq!(wav.samples, [1, 2]);
    assert!(!wav.truncated);
}
