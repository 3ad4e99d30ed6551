//! Writing WAV files in the canonical layout most tools expect.
//!
//! PCM gets the classic 44-byte header (16-byte `fmt `, then `data`). G.711 follows the
//! non-PCM rules of the WAVE specification: an 18-byte `fmt ` with `cbSize = 0` and a `fact`
//! chunk holding the sample count, then `data` with a pad byte when its length is odd.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

use super::{SAMPLE_RATE_HZ, SampleFormat, WavError};

/// Bytes encoded per `write_all`: the encoding buffer lives on the stack.
const BLOCK_BYTES: usize = 4096;

/// Writes `samples` as a WAV file at `path`, replacing any file there.
pub fn write_path(
    path: impl AsRef<Path>,
    format: SampleFormat,
    samples: &[i16],
) -> Result<(), WavError> {
    write_to(BufWriter::new(File::create(path)?), format, samples)
}

/// Writes `samples` as a WAV file in `format` (G.711 formats are encoded here), then flushes.
pub fn write_to(
    mut writer: impl Write,
    format: SampleFormat,
    samples: &[i16],
) -> Result<(), WavError> {
    let too_long = || WavError::TooLong { samples: samples.len() };
    let data_len = samples
        .len()
        .checked_mul(usize::from(format.bytes_per_sample()))
        .and_then(|len| u32::try_from(len).ok())
        .ok_or_else(too_long)?;
    writer.write_all(&header(format, data_len).ok_or_else(too_long)?)?;
    write_samples(&mut writer, format, samples)?;
    if data_len % 2 == 1 {
        writer.write_all(&[0])?; // chunks are word-aligned
    }
    writer.flush()?;
    Ok(())
}

/// Everything before the sample data, or `None` if the RIFF size would not fit in 32 bits.
fn header(format: SampleFormat, data_len: u32) -> Option<Vec<u8>> {
    let is_g711 = format.law().is_some();
    let bytes_per_sample = format.bytes_per_sample();
    let mut header = Vec::with_capacity(58);
    header.extend_from_slice(b"RIFF\0\0\0\0WAVE"); // RIFF size filled in below
    header.extend_from_slice(b"fmt ");
    put_u32(&mut header, if is_g711 { 18 } else { 16 });
    put_u16(&mut header, format.tag());
    put_u16(&mut header, 1); // channels
    put_u32(&mut header, SAMPLE_RATE_HZ);
    put_u32(&mut header, SAMPLE_RATE_HZ * u32::from(bytes_per_sample)); // byte rate
    put_u16(&mut header, bytes_per_sample); // block align
    put_u16(&mut header, bytes_per_sample * 8);
    if is_g711 {
        put_u16(&mut header, 0); // cbSize: no extra format bytes
        header.extend_from_slice(b"fact");
        put_u32(&mut header, 4);
        put_u32(&mut header, data_len); // sample count: one byte per mono sample
    }
    header.extend_from_slice(b"data");
    put_u32(&mut header, data_len);

    // The RIFF size covers everything after its own field, including the data pad byte.
    let riff_len =
        u32::try_from(header.len() - 8).ok()?.checked_add(data_len)?.checked_add(data_len % 2)?;
    header[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Some(header)
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn write_samples(
    writer: &mut impl Write,
    format: SampleFormat,
    samples: &[i16],
) -> Result<(), WavError> {
    let mut block = [0u8; BLOCK_BYTES];
    match format.law() {
        None => {
            for chunk in samples.chunks(BLOCK_BYTES / 2) {
                for (bytes, sample) in block.chunks_exact_mut(2).zip(chunk) {
                    bytes.copy_from_slice(&sample.to_le_bytes());
                }
                writer.write_all(&block[..chunk.len() * 2])?;
            }
        }
        Some(law) => {
            for chunk in samples.chunks(BLOCK_BYTES) {
                let encoded = law.encode_slice(chunk, &mut block);
                writer.write_all(&block[..encoded])?;
            }
        }
    }
    Ok(())
}
