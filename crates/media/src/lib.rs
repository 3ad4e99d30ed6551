//! # ivrpay-media
//!
//! The RTP relay every call's audio goes through. The customer's leg (A) and the agent's
//! leg (B) each get a local RTP/RTCP port pair; the customer's audio reaches the agent
//! with every DTMF key hidden, and the agent's audio reaches the customer unchanged (or an
//! IVR prompt plays instead).
//!
//! - [`Session`]: the sans-IO core of one call. Datagrams and time in; datagrams, digit
//!   events and deadlines out.
//! - [`MediaEngine`] / [`CallDriver`]: the tokio side: port allocation with quarantine, the
//!   sockets, one task per call, a channel of [`MediaEvent`]s and a [`CallHandle`] to
//!   steer the call (remote SDP, prompts, hold, close).
//! - [`MediaRuntime`]: threads of the relay's own that run the drivers, each thread with
//!   its share of the calls, waking in ticks rather than per datagram once it is busy.
//! - G.711 is [`ivrpay_audio::g711`]; the DTMF engine is [`ivrpay_dtmf`].
//!
//! ## Run loop
//!
//! ```no_run
//! # async fn example() -> Result<(), ivrpay_media::MediaError> {
//! use ivrpay_media::{Codec, EngineConfig, Leg, MediaEngine, MediaEvent, MediaProfile};
//! use ivrpay_media::{PayloadTypes, RemoteMedia};
//!
//! let engine = MediaEngine::new(EngineConfig::default())?;
//! let mut call = engine.create_call("127.0.0.1".parse().unwrap(), MediaProfile::default())?;
//! tokio::spawn(call.driver.run());
//! let customer_port = call.handle.local(Leg::Customer).rtp; // into the SDP sent to the customer
//! let agent_sdp = RemoteMedia::new(
//!     "10.0.0.5:4000".parse().unwrap(),
//!     PayloadTypes::only(Codec::Pcma).with_telephone_event(101),
//! );
//! call.handle.set_remote(Leg::Agent, agent_sdp)?;
//! while let Some(event) = call.events.recv().await {
//!     if let MediaEvent::Digit(digit) = event { /* to the capture layer */ }
//! }
//! call.handle.close().await;
//! # Ok(()) }
//! ```
//!
//! ## Design
//!
//! **Uplink** (customer → agent): decode → DTMF detector → lookahead (20 ms by default) →
//! masker → encode. Audio that is not DTMF leaves with its original codes, only delayed;
//! in-band detection runs whether or not telephone-event was negotiated; telephone-event
//! packets are consumed and the agent hears the replacement audio for the key's duration
//! instead. Loss, silence suppression and events are gaps on one continuous timeline, so
//! the agent's stream stays one clean sequence (see `session::uplink`).
//!
//! **Downlink** (agent → customer): passthrough with renumbering, transcoding only if the
//! two legs negotiated different G.711 laws; prompts replace it while they play.
//!
//! **Both ways**: RTCP relayed with SSRCs mapped; symmetric RTP (latching) when the profile
//! allows it, onto the SDP's address only (or, for peers behind NAT, any port of the SIP
//! peer's address), moved only under bounded rules, and then nothing from a third address
//! (see [`LatchFrom`]); malformed datagrams counted and dropped. Port pairs are chosen at
//! random among the free ones, so that the next call's ports cannot be guessed.
//!
//! Digits are card data: [`DigitEvent`]'s `Debug` hides the key and nothing here logs.

mod config;
mod driver;
mod error;
mod metrics;
mod ports;
mod prompt;
pub mod rtcp;
pub mod rtp;
mod session;

pub use config::{Codec, LatchFrom, Leg, MediaProfile, PayloadTypes, RemoteMedia, SocketKind};
pub use driver::{
    Call, CallDriver, CallHandle, DatagramSocket, EngineConfig, LocalPorts, MediaEngine,
    MediaRuntime, RunningCall, RuntimeConfig, SocketBinder, TokioBinder, TokioUdp,
};
pub use error::MediaError;
pub use metrics::{
    Histogram, LegMetrics, MaskingMetrics, RelayMetrics, RelaySnapshot, SessionMetrics,
};
pub use ports::{PortAllocator, PortPair};
pub use prompt::{HoldAudio, PlayOptions, Prompt, PromptEnd, PromptId};
pub use session::{DigitEvent, DigitPhase, DigitSource, MediaEvent, MediaTime, Session, Transmit};
