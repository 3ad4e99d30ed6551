//! RIFF/WAVE files in the formats ivrpay's offline tools accept: 8 kHz mono 16-bit PCM, µ-law
//! or A-law (plain or `WAVE_FORMAT_EXTENSIBLE`). These are the formats of the live call path, so
//! `ivrpay dtmf detect|mask|scan` run the same code on a recording as on a call.
//!
//! # What the reader accepts
//!
//! The header must be intact: anything else (another rate, stereo, another sample format, a
//! header cut short or inconsistent) is a [`WavError`] whose message names the problem. Unknown
//! chunks (`LIST`, `fact`, `cue `, ...) are skipped, honouring the pad byte after odd-sized
//! chunks; chunks after `data` are never read. The RIFF size and the fmt byte rate are
//! ignored: writers often get them wrong and nothing here depends on them.
//!
//! The audio itself is read leniently, because a recording is worth more than a tidy header: a
//! `data` chunk that declares more bytes than the file holds is read to the end of the file.
//! That is what a streaming writer leaves behind (SoX writing to a pipe declares 0x7FFFF000
//! bytes, others 0xFFFFFFFF) and what a recorder killed mid-call leaves behind. A trailing
//! partial sample is dropped. Either case sets [`Wav::truncated`] so a tool can warn.
//!
//! Files are read whole into memory: an hour of 8 kHz 16-bit audio is 58 MB.

mod error;
mod format;
mod read;
mod write;

pub use error::{FourCc, WavError};
pub use format::SampleFormat;
pub use read::{parse, read_from, read_path};
pub use write::{write_path, write_to};

/// The only sample rate ivrpay processes: narrowband telephony.
pub const SAMPLE_RATE_HZ: u32 = 8000;

/// A decoded WAV file. G.711 data is expanded to 16-bit linear samples; `format` records how it
/// was stored so a tool can write its output the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// How the samples were stored in the file.
    pub format: SampleFormat,
    /// Mono samples at [`SAMPLE_RATE_HZ`].
    pub samples: Vec<i16>,
    /// The `data` chunk held less than its header declared, or ended inside a sample: the file
    /// was cut short or written by a streaming writer. `samples` holds every whole sample there.
    pub truncated: bool,
}
