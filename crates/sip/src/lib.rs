//! # ivrpay-sip
//!
//! The B2BUA that puts ivrpay in the call path: customer (leg A) → ivrpay → contact centre
//! (leg B).

pub mod b2bua;
pub mod driver;
pub mod media;
pub mod message;
pub mod multipart;
pub mod profile;
pub mod sdp;
pub mod transaction;
pub mod transport;
