//! G.711 µ-law (PCMU).
//!
//! The reference quantises a 14-bit sample: the two low bits of a 16-bit sample are dropped
//! with an arithmetic shift, so small negative samples (-1 to -4) keep magnitude 1 while small
//! positive ones (0 to 3) become 0, exactly as `g711.c` and `audioop.lin2ulaw` do.

/// Bias added to the magnitude so segment boundaries fall on powers of two (0x84 in 16-bit
/// units, 33 in the encoder's 14-bit units).
const BIAS: i16 = 0x84;
const BIAS_14: i32 = 33;

/// Largest biased 14-bit magnitude the encoder represents: the reference clips the magnitude to
/// 8159, and 8159 + 33 lands past the last segment, where it returns this same top code.
const MAX_BIASED: i32 = 0x1FFF;

const DECODE: [i16; 256] = decode_table();

/// Encodes one 16-bit linear sample to a µ-law code.
#[must_use]
#[inline]
pub fn encode(sample: i16) -> u8 {
    let value = i32::from(sample >> 2);
    let sign = value >> 31; // 0 for non-negative, -1 for negative
    let magnitude = (value ^ sign) - sign;
    let biased = (magnitude + BIAS_14).min(MAX_BIASED);
    // `biased >= 33`, so its bit length is at least 6 and this cannot underflow.
    let segment = (u32::BITS - biased.leading_zeros()) - 6;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let code = (segment << 4) as u8 | mantissa as u8;
    // Codes go on the wire inverted; after inversion the sign bit is set for positive samples.
    let invert = 0xFF ^ (sign as u8 & 0x80);
    code ^ invert
}

/// Decodes one µ-law code to a 16-bit linear sample.
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

/// The reference decoder (`ulaw2linear` in `g711.c`), run once at compile time.
const fn decode_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < table.len() {
        let inverted = !(code as u8);
        let step = (((inverted & 0x0F) as i16) << 3) + BIAS;
        let magnitude = step << ((inverted & 0x70) >> 4);
        table[code] = if inverted & 0x80 != 0 { BIAS - magnitude } else { magnitude - BIAS };
        code += 1;
    }
    table
}
