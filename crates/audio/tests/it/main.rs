//! Integration tests for ivrpay-audio, in one binary so they link once.

mod g711_reference;
