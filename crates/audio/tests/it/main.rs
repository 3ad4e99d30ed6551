//! Integration tests for ivrpay-audio, in one binary so they link once.

mod g711_reference;
mod support;
mod wav_fuzz;
mod wav_malformed;
mod wav_roundtrip;
mod wav_sox;
