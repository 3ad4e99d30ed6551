//! The sample formats ivrpay reads and writes, and their WAV format tags.

use std::fmt;

use crate::g711::Law;

/// `WAVE_FORMAT_PCM`.
pub(crate) const TAG_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_ALAW`.
pub(crate) const TAG_ALAW: u16 = 0x0006;
/// `WAVE_FORMAT_MULAW`.
pub(crate) const TAG_MULAW: u16 = 0x0007;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format tag is in the sub-format GUID.
pub(crate) const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// How samples are stored in a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 16-bit signed little-endian linear PCM.
    Pcm16,
    /// 8-bit G.711 µ-law.
    Ulaw,
    /// 8-bit G.711 A-law.
    Alaw,
}

impl SampleFormat {
    /// The format for a WAV format tag, if ivrpay supports it.
    pub(crate) const fn from_tag(tag: u16) -> Option<Self> {
        match tag {
            TAG_PCM => Some(Self::Pcm16),
            TAG_MULAW => Some(Self::Ulaw),
            TAG_ALAW => Some(Self::Alaw),
            _ => None,
        }
    }

    pub(crate) const fn tag(self) -> u16 {
        match self {
            Self::Pcm16 => TAG_PCM,
            Self::Ulaw => TAG_MULAW,
            Self::Alaw => TAG_ALAW,
        }
    }

    /// Bytes one sample takes in the file.
    #[must_use]
    pub const fn bytes_per_sample(self) -> u16 {
        match self {
            Self::Pcm16 => 2,
            Self::Ulaw | Self::Alaw => 1,
        }
    }

    /// The companding law for G.711 formats; `None` for linear PCM.
    #[must_use]
    pub const fn law(self) -> Option<Law> {
        match self {
            Self::Pcm16 => None,
            Self::Ulaw => Some(Law::Ulaw),
            Self::Alaw => Some(Law::Alaw),
        }
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pcm16 => "PCM",
            Self::Ulaw => "µ-law",
            Self::Alaw => "A-law",
        })
    }
}
