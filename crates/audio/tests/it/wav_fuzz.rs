//! Property: the parser never panics, whatever the bytes. Random strings rarely get past
//! "RIFF", so most cases mutate valid files instead (a cheap stand-in for a cargo-fuzz target).

use std::panic;

use ivrpay_audio::wav::{self, SampleFormat};

use crate::support::{MULAW, PCM, extensible_fmt, wav_file};

/// xorshift64*: deterministic, so a failure reproduces from the seed in the message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

fn assert_no_panic(bytes: &[u8], case: &str) {
    match panic::catch_unwind(|| wav::parse(bytes)) {
        Ok(Ok(wav)) => assert!(wav.samples.len() <= bytes.len(), "{case}: more samples than bytes"),
        Ok(Err(err)) => assert!(!err.to_string().contains('\n'), "{case}: {err}"),
        Err(_) => panic!("parser panicked on {case}: {bytes:02x?}"),
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for format in [SampleFormat::Pcm16, SampleFormat::Ulaw, SampleFormat::Alaw] {
        let mut bytes = Vec::new();
        wav::write_to(&mut bytes, format, &[0, 1000, -1000, i16::MAX, i16::MIN]).unwrap();
        seeds.push(bytes);
    }
    seeds.push(wav_file(&[
        (b"LIST", b"odd"),
        (b"fmt ", &extensible_fmt(MULAW, 1, 8)),
        (b"data", &[0x7F; 9]),
    ]));
    seeds.push(wav_file(&[(b"fmt ", &extensible_fmt(PCM, 2, 16)), (b"data", &[1; 6])]));
    seeds
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..20_000 {
        let len = rng.below(96);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if case % 2 == 0 && len >= 12 {
            bytes[..4].copy_from_slice(b"RIFF");
            bytes[8..12].copy_from_slice(b"WAVE");
        }
        assert_no_panic(&bytes, &format!("random case {case}"));
    }
}

#[test]
fn mutated_valid_files_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let seeds = seeds();
    for case in 0..50_000 {
        let mut bytes = seeds[case % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = rng.byte(),
                1 => bytes[at] ^= 1 << rng.below(8),
                // Sizes are where parsers break: make one huge, zero or odd.
                2 => bytes[at] = [0x00, 0xFF, 0x01, 0x80][rng.below(4)],
                _ => bytes.truncate(at),
            }
            if bytes.is_empty() {
                break;
            }
        }
        assert_no_panic(&bytes, &format!("mutation case {case}"));
    }
}
