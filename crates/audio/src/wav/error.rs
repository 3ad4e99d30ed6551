//! Why a WAV file could not be read or written.

use std::{error, fmt, io};

use super::{SAMPLE_RATE_HZ, SampleFormat};

/// A RIFF four-character code (chunk id or file type), shown in messages as text when printable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &byte in &self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

/// Why a WAV file could not be read or written. Each message is one line naming the problem,
/// suitable for a CLI to print after the file name.
#[derive(Debug)]
#[non_exhaustive]
pub enum WavError {
    /// Reading or writing the underlying file or stream failed.
    Io(io::Error),
    /// The file has no bytes at all.
    Empty,
    /// The file does not start with `RIFF` (it may be RIFX, RF64 or not a WAV file at all).
    NotRiff {
        /// The first four bytes.
        found: FourCc,
    },
    /// The RIFF file is not of type `WAVE`.
    NotWave {
        /// The RIFF form type.
        found: FourCc,
    },
    /// The file ends inside the RIFF header or a chunk header.
    TruncatedHeader {
        /// Length of the whole file in bytes.
        file_len: usize,
    },
    /// A chunk before the audio data is longer than what is left of the file.
    TruncatedChunk {
        /// The chunk id.
        id: FourCc,
        /// The size its header declares.
        declared: u32,
        /// The bytes left in the file after its header.
        available: usize,
    },
    /// No `fmt ` chunk before the `data` chunk.
    MissingFmt,
    /// No `data` chunk.
    MissingData,
    /// The `fmt ` chunk is too short for its format tag.
    FmtTooSmall {
        /// The chunk's size.
        size: usize,
        /// The size the format tag needs.
        needed: usize,
    },
    /// The format tag is not PCM, µ-law or A-law.
    UnsupportedFormat {
        /// The format tag (from the sub-format GUID for `WAVE_FORMAT_EXTENSIBLE`).
        tag: u16,
    },
    /// A `WAVE_FORMAT_EXTENSIBLE` sub-format GUID that is not a plain format tag.
    UnsupportedSubformat {
        /// The GUID as stored in the file.
        guid: [u8; 16],
    },
    /// More than one channel (or zero).
    UnsupportedChannels {
        /// The channel count.
        channels: u16,
    },
    /// A sample rate other than [`SAMPLE_RATE_HZ`].
    UnsupportedSampleRate {
        /// The sample rate in Hz.
        rate: u32,
    },
    /// A sample size that does not match the format (PCM must be 16-bit, G.711 8-bit).
    UnsupportedBitsPerSample {
        /// The format the tag names.
        format: SampleFormat,
        /// The bits per sample.
        bits: u16,
    },
    /// The block alignment does not match one mono sample of the format.
    BlockAlignMismatch {
        /// The block alignment in the file.
        block_align: u16,
        /// The block alignment of the format.
        expected: u16,
    },
    /// Too many samples for a WAV file, whose sizes are 32-bit.
    TooLong {
        /// The number of samples asked to write.
        samples: usize,
    },
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "I/O error: {err}"),
            Self::Empty => f.write_str("the file is empty"),
            Self::NotRiff { found } => {
                write!(f, "not a RIFF WAV file: it starts with {found} instead of \"RIFF\"")
            }
            Self::NotWave { found } => {
                write!(f, "not a WAV file: the RIFF type is {found} instead of \"WAVE\"")
            }
            Self::TruncatedHeader { file_len } => {
                write!(f, "truncated header: the file ends inside a header after {file_len} bytes")
            }
            Self::TruncatedChunk { id, declared, available } => write!(
                f,
                "truncated {id} chunk: it declares {declared} bytes but only {available} remain"
            ),
            Self::MissingFmt => f.write_str("no \"fmt \" chunk before the audio data"),
            Self::MissingData => f.write_str("no \"data\" chunk: the file holds no audio"),
            Self::FmtTooSmall { size, needed } => {
                write!(f, "\"fmt \" chunk too small: {size} bytes where {needed} are needed")
            }
            Self::UnsupportedFormat { tag } => {
                write!(f, "format tag 0x{tag:04x}")?;
                if let Some(name) = tag_name(*tag) {
                    write!(f, " ({name})")?;
                }
                f.write_str(" is not supported: ivrpay reads 16-bit PCM, µ-law and A-law")
            }
            Self::UnsupportedSubformat { guid } => {
                f.write_str("WAVE_FORMAT_EXTENSIBLE sub-format ")?;
                write_guid(f, guid)?;
                f.write_str(" is not supported: ivrpay reads 16-bit PCM, µ-law and A-law")
            }
            Self::UnsupportedChannels { channels } => {
                write!(f, "{channels} channels are not supported: ivrpay needs mono")
            }
            Self::UnsupportedSampleRate { rate } => write!(
                f,
                "sample rate {rate} Hz is not supported: ivrpay needs {SAMPLE_RATE_HZ} Hz"
            ),
            Self::UnsupportedBitsPerSample { format, bits } => write!(
                f,
                "{bits}-bit {format} is not supported: {format} WAV must be {}-bit",
                format.bytes_per_sample() * 8
            ),
            Self::BlockAlignMismatch { block_align, expected } => write!(
                f,
                "malformed \"fmt \" chunk: block alignment {block_align} where one mono sample \
                 takes {expected} bytes"
            ),
            Self::TooLong { samples } => {
                write!(f, "{samples} samples are too many for a WAV file (4 GiB limit)")
            }
        }
    }
}

impl error::Error for WavError {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for WavError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// Names of formats people commonly try to feed in, so the message says what the file is.
fn tag_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0002 => "Microsoft ADPCM",
        0x0003 => "IEEE float",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0055 => "MP3",
        _ => return None,
    })
}

/// Writes a GUID stored in RIFF byte order (first three fields little-endian) in its usual
/// textual form.
fn write_guid(f: &mut fmt::Formatter<'_>, g: &[u8; 16]) -> fmt::Result {
    write!(
        f,
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9]
    )?;
    g[10..].iter().try_for_each(|byte| write!(f, "{byte:02x}"))
}
