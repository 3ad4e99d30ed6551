//! DTMF engine.
