//! ITU-T G.711 companding: µ-law and A-law, bit-exact with the Sun/CCITT reference `g711.c`
//! (and therefore with Python's `audioop`, SoX and most telephony stacks).
//!
//! Every RTP packet on a G.711 call passes through here twice (decode for DTMF detection, encode
//! after masking), so decoding is a 256-entry table lookup and encoding is a few branch-free
//! integer operations (a leading-zero count finds the segment). Nothing allocates; the slice
//! functions write into buffers the caller owns.
//!
//! The slice functions process `min(input.len(), output.len())` samples and return that count,
//! so a short output buffer never panics; size both sides equally to convert everything.

pub mod alaw;
pub mod ulaw;

/// The two G.711 companding laws, for code that picks one at run time (from an RTP payload type
/// or a WAV format tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, RTP payload type 0): North America and Japan.
    Ulaw,
    /// A-law (PCMA, RTP payload type 8): Europe and most of the rest of the world.
    Alaw,
}

impl Law {
    /// Encodes one 16-bit linear sample.
    #[must_use]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::Ulaw => ulaw::encode(sample),
            Self::Alaw => alaw::encode(sample),
        }
    }

    /// Decodes one code to a 16-bit linear sample.
    #[must_use]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::Ulaw => ulaw::decode(code),
            Self::Alaw => alaw::decode(code),
        }
    }

    /// Encodes `min(input.len(), output.len())` samples and returns that count.
    pub fn encode_slice(self, input: &[i16], output: &mut [u8]) -> usize {
        match self {
            Self::Ulaw => ulaw::encode_slice(input, output),
            Self::Alaw => alaw::encode_slice(input, output),
        }
    }

    /// Decodes `min(input.len(), output.len())` codes and returns that count.
    pub fn decode_slice(self, input: &[u8], output: &mut [i16]) -> usize {
        match self {
            Self::Ulaw => ulaw::decode_slice(input, output),
            Self::Alaw => alaw::decode_slice(input, output),
        }
    }

    /// Replaces every sample with what survives a G.711 link (encode, then decode), as a test
    /// or an offline tool needs to hear exactly what the far end will.
    pub fn round_trip_in_place(self, samples: &mut [i16]) {
        match self {
            Self::Ulaw => ulaw::round_trip_in_place(samples),
            Self::Alaw => alaw::round_trip_in_place(samples),
        }
    }
}
