//! G.711 A-law (PCMA).
//!
//! The reference quantises a 13-bit sample: the three low bits of a 16-bit sample are dropped
//! with an arithmetic shift, and a negative value `v` is coded with magnitude `-v - 1`, exactly as
//! `g711.c` and `audioop.lin2alaw` do.

/// A-law inverts the even bits of every code on the wire.
const EVEN_BITS: u8 = 0x55;
/// Set in a code (before the even-bit inversion) for non-negative samples.
const SIGN_BIT: u8 = 0x80;

const DECODE: [i16; 256] = decode_table();

/// Encodes one 16-bit linear sample to an A-law code.
#[must_use]
#[inline]
pub fn encode(sample: i16) -> u8 {
    let value = i32::from(sample >> 3);
    let sign = value >> 31; // 0 for non-negative, -1 for negative
    let magnitude = value ^ sign; // `-value - 1` for negatives; 0..=4095 either way
    // Segment 0 covers magnitudes below 32, then each segment doubles: bit length minus 5.
    let segment = (u32::BITS - (magnitude | 0x1F).leading_zeros()) - 5;
    // Segments 0 and 1 share a step size of 2.
    let mantissa = (magnitude >> segment.max(1)) & 0x0F;
    let code = (segment << 4) as u8 | mantissa as u8;
    let invert = EVEN_BITS ^ (!sign as u8 & SIGN_BIT);
    code ^ invert
}

/// Decodes one A-law code to a 16-bit linear sample.
#[must_use]
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[usize::from(code)]
}

/// Encodes `min(input.len(), output.len())` samples and returns that count.
pub fn encode_slice(input: &[i16], output: &mut [u8]) -> usize {
    let count = input.len().min(output.len());
    for (code, &sample) in output.iter_mut().zip(input) {
        *code = encode(sample);
    }
    count
}

/// Decodes `min(input.len(), output.len())` codes and returns that count.
pub fn decode_slice(input: &[u8], output: &mut [i16]) -> usize {
    let count = input.len().min(output.len());
    for (sample, &code) in output.iter_mut().zip(input) {
        *sample = decode(code);
    }
    count
}

/// Replaces every sample with `decode(encode(sample))`.
pub fn round_trip_in_place(samples: &mut [i16]) {
    for sample in samples {
        *sample = decode(encode(*sample));
    }
}

/// The reference decoder (`alaw2linear` in `g711.c`), run once at compile time.
const fn decode_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < table.len() {
        let raw = code as u8 ^ EVEN_BITS;
        let step = ((raw & 0x0F) as i16) << 4;
        let magnitude = match (raw & 0x70) >> 4 {
            0 => step + 8,
            segment => (step + 0x108) << (segment - 1),
        };
        table[code] = if raw & SIGN_BIT != 0 { magnitude } else { -magnitude };
        code += 1;
    }
    table
}
