//! Exhaustive comparison with tables from an independent implementation: Python's `audioop`
//! (the Sun/CCITT reference `g711.c`), made by `tests/data/make_g711_reference.py`.

use ivrpay_audio::g711::{Law, alaw, ulaw};

/// Entry `i` is the code for the sample whose two's-complement bits are `i`.
static ULAW_ENCODE: &[u8; 65536] = include_bytes!("../data/ulaw_encode.bin");
static ALAW_ENCODE: &[u8; 65536] = include_bytes!("../data/alaw_encode.bin");
/// Entry `c` (little-endian i16) is what code `c` decodes to.
static ULAW_DECODE: &[u8; 512] = include_bytes!("../data/ulaw_decode.bin");
static ALAW_DECODE: &[u8; 512] = include_bytes!("../data/alaw_decode.bin");

const LAWS: [(Law, &[u8; 65536], &[u8; 512]); 2] =
    [(Law::Ulaw, ULAW_ENCODE, ULAW_DECODE), (Law::Alaw, ALAW_ENCODE, ALAW_DECODE)];

fn every_sample() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

fn reference_decode(table: &[u8; 512], code: u8) -> i16 {
    let at = usize::from(code) * 2;
    i16::from_le_bytes([table[at], table[at + 1]])
}

fn assert_encoder_matches(encode: fn(i16) -> u8, table: &[u8; 65536], name: &str) {
    let mismatches: Vec<(i16, u8, u8)> = every_sample()
        .map(|sample| (sample, encode(sample), table[usize::from(sample as u16)]))
        .filter(|(_, ours, reference)| ours != reference)
        .collect();
    assert!(
        mismatches.is_empty(),
        "{name}: {} of 65536 inputs differ from audioop, first (sample, ours, audioop): {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(8)]
    );
}

fn assert_decoder_matches(decode: fn(u8) -> i16, table: &[u8; 512], name: &str) {
    for code in 0..=u8::MAX {
        assert_eq!(decode(code), reference_decode(table, code), "{name}: code 0x{code:02x}");
    }
}

#[test]
fn ulaw_encode_matches_audioop_for_every_sample() {
    assert_encoder_matches(ulaw::encode, ULAW_ENCODE, "µ-law");
}

#[test]
fn alaw_encode_matches_audioop_for_every_sample() {
    assert_encoder_matches(alaw::encode, ALAW_ENCODE, "A-law");
}

#[test]
fn ulaw_decode_matches_audioop_for_every_code() {
    assert_decoder_matches(ulaw::decode, ULAW_DECODE, "µ-law");
}

#[test]
fn alaw_decode_matches_audioop_for_every_code() {
    assert_decoder_matches(alaw::decode, ALAW_DECODE, "A-law");
}

#[test]
fn slice_and_law_functions_match_the_reference() {
    let input: Vec<i16> = every_sample().collect();
    let codes: Vec<u8> = (0..=u8::MAX).collect();
    for (law, encode_table, decode_table) in LAWS {
        let mut encoded = vec![0; input.len()];
        assert_eq!(law.encode_slice(&input, &mut encoded), input.len());
        for (&sample, &code) in input.iter().zip(&encoded) {
            assert_eq!(code, encode_table[usize::from(sample as u16)], "{law:?} slice, {sample}");
            assert_eq!(law.encode(sample), code, "{law:?} single, {sample}");
        }

        let mut decoded = vec![0; codes.len()];
        assert_eq!(law.decode_slice(&codes, &mut decoded), codes.len());
        for (&code, &sample) in codes.iter().zip(&decoded) {
            assert_eq!(sample, reference_decode(decode_table, code), "{law:?} slice, {code}");
            assert_eq!(law.decode(code), sample, "{law:?} single, {code}");
        }
    }
}

#[test]
fn decoded_values_survive_another_round_trip() {
    for law in [Law::Ulaw, Law::Alaw] {
        for code in 0..=u8::MAX {
            let sample = law.decode(code);
            assert_eq!(law.decode(law.encode(sample)), sample, "{law:?} code 0x{code:02x}");
        }
    }
}

#[test]
fn round_trip_in_place_is_decode_of_encode() {
    for (law, encode_table, decode_table) in LAWS {
        let mut samples: Vec<i16> = every_sample().collect();
        law.round_trip_in_place(&mut samples);
        for (original, survivor) in every_sample().zip(samples) {
            let code = encode_table[usize::from(original as u16)];
            assert_eq!(survivor, reference_decode(decode_table, code), "{law:?} {original}");
        }
    }
}

#[test]
fn slice_functions_stop_at_the_shorter_side() {
    for law in [Law::Ulaw, Law::Alaw] {
        let mut codes = [0xAA; 4];
        assert_eq!(law.encode_slice(&[1000, -1000], &mut codes), 2);
        assert_eq!(codes[2..], [0xAA, 0xAA], "{law:?} wrote past the input");
        assert_eq!(law.encode_slice(&[1000; 8], &mut codes), 4);

        let mut samples = [7; 4];
        assert_eq!(law.decode_slice(&[0x00, 0x80], &mut samples), 2);
        assert_eq!(samples[2..], [7, 7], "{law:?} wrote past the input");
        assert_eq!(law.decode_slice(&[0x55; 8], &mut samples), 4);
    }
}
