//! Parsing a WAV file held in memory. Every length comes from the file, so every access is
//! checked: malformed input gives a [`WavError`], never a panic.

use std::{fs, io::Read, path::Path};

use super::format::{SampleFormat, TAG_EXTENSIBLE};
use super::{FourCc, SAMPLE_RATE_HZ, Wav, WavError};

/// Size of the fields every `fmt ` chunk has (`WAVEFORMAT` plus `wBitsPerSample`).
const FMT_BASE_LEN: usize = 16;
/// Size of a `WAVE_FORMAT_EXTENSIBLE` fmt chunk, which ends with the sub-format GUID.
const FMT_EXTENSIBLE_LEN: usize = 40;
/// Where the sub-format GUID starts in an extensible fmt chunk.
const SUBFORMAT_OFFSET: usize = 24;
/// Bytes 2..16 of every sub-format GUID that just wraps a format tag
/// (`xxxxxxxx-0000-0010-8000-00aa00389b71`, tag in the first two bytes).
const SUBFORMAT_TAIL: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// Reads and parses the WAV file at `path`.
pub fn read_path(path: impl AsRef<Path>) -> Result<Wav, WavError> {
    parse(&fs::read(path)?)
}

/// Reads `reader` to its end and parses it as a WAV file.
pub fn read_from(mut reader: impl Read) -> Result<Wav, WavError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// Parses a whole WAV file. See the [module documentation](super) for what is accepted.
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    let mut rest = riff_body(bytes)?;
    let mut format = None;
    loop {
        let Some((header, body)) = rest.split_first_chunk::<8>() else {
            return Err(match (rest.is_empty(), format) {
                (false, _) => WavError::TruncatedHeader { file_len: bytes.len() },
                (true, None) => WavError::MissingFmt,
                (true, Some(_)) => WavError::MissingData,
            });
        };
        let (id, size) = chunk_header(header);
        if id.0 == *b"data" {
            let format = format.ok_or(WavError::MissingFmt)?;
            return Ok(decode_data(format, body, size));
        }
        let declared = usize::try_from(size).unwrap_or(usize::MAX);
        let chunk = body.get(..declared).ok_or(WavError::TruncatedChunk {
            id,
            declared: size,
            available: body.len(),
        })?;
        if id.0 == *b"fmt " {
            format = Some(parse_fmt(chunk)?);
        }
        // Odd-sized chunks are followed by a pad byte; a missing one at the very end is harmless.
        // No overflow: `declared <= body.len()`, which is far below `usize::MAX`.
        rest = body.get(declared + declared % 2..).unwrap_or_default();
    }
}

/// Checks the 12-byte RIFF header and returns the chunks after it.
fn riff_body(bytes: &[u8]) -> Result<&[u8], WavError> {
    if bytes.is_empty() {
        return Err(WavError::Empty);
    }
    if let Some(magic) = bytes.first_chunk::<4>() {
        if magic != b"RIFF" {
            return Err(WavError::NotRiff { found: FourCc(*magic) });
        }
    }
    let Some((header, chunks)) = bytes.split_first_chunk::<12>() else {
        return Err(WavError::TruncatedHeader { file_len: bytes.len() });
    };
    // Bytes 4..8, the RIFF size, are ignored: see the module documentation.
    let form = FourCc([header[8], header[9], header[10], header[11]]);
    if form.0 != *b"WAVE" {
        return Err(WavError::NotWave { found: form });
    }
    Ok(chunks)
}

fn chunk_header(header: &[u8; 8]) -> (FourCc, u32) {
    let [a, b, c, d, s0, s1, s2, s3] = *header;
    (FourCc([a, b, c, d]), u32::from_le_bytes([s0, s1, s2, s3]))
}

/// Validates a `fmt ` chunk and returns the sample format it describes.
///
/// The byte rate is ignored (it is derived, and writers get it wrong), but the block alignment
/// must match because it defines how samples are framed.
fn parse_fmt(chunk: &[u8]) -> Result<SampleFormat, WavError> {
    let too_small = |needed| WavError::FmtTooSmall { size: chunk.len(), needed };
    let Some(base) = chunk.first_chunk::<FMT_BASE_LEN>() else {
        return Err(too_small(FMT_BASE_LEN));
    };
    let u16_at = |at: usize| u16::from_le_bytes([base[at], base[at + 1]]);
    let tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([base[4], base[5], base[6], base[7]]);
    let block_align = u16_at(12);
    let bits = u16_at(14);

    let tag = if tag == TAG_EXTENSIBLE {
        let guid = chunk
            .get(SUBFORMAT_OFFSET..FMT_EXTENSIBLE_LEN)
            .and_then(|guid| <[u8; 16]>::try_from(guid).ok())
            .ok_or_else(|| too_small(FMT_EXTENSIBLE_LEN))?;
        subformat_tag(guid)?
    } else {
        tag
    };
    let format = SampleFormat::from_tag(tag).ok_or(WavError::UnsupportedFormat { tag })?;
    if channels != 1 {
        return Err(WavError::UnsupportedChannels { channels });
    }
    if rate != SAMPLE_RATE_HZ {
        return Err(WavError::UnsupportedSampleRate { rate });
    }
    if bits != format.bytes_per_sample() * 8 {
        return Err(WavError::UnsupportedBitsPerSample { format, bits });
    }
    if block_align != format.bytes_per_sample() {
        return Err(WavError::BlockAlignMismatch {
            block_align,
            expected: format.bytes_per_sample(),
        });
    }
    Ok(format)
}

/// The format tag a `KSDATAFORMAT_SUBTYPE_*` GUID wraps.
fn subformat_tag(guid: [u8; 16]) -> Result<u16, WavError> {
    let [t0, t1, tail @ ..] = guid;
    if tail == SUBFORMAT_TAIL {
        Ok(u16::from_le_bytes([t0, t1]))
    } else {
        Err(WavError::UnsupportedSubformat { guid })
    }
}

/// Decodes the `data` chunk body, reading to the end of the file if it declares more.
fn decode_data(format: SampleFormat, body: &[u8], size: u32) -> Wav {
    let declared = usize::try_from(size).unwrap_or(usize::MAX);
    let data = body.get(..declared).unwrap_or(body);
    let sample_len = usize::from(format.bytes_per_sample());
    let truncated = data.len() < declared || data.len() % sample_len != 0;
    let samples = match format.law() {
        None => data.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect(),
        Some(law) => {
            let mut samples = vec![0; data.len()];
            law.decode_slice(data, &mut samples);
            samples
        }
    };
    Wav { format, samples, truncated }
}
