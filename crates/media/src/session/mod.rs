//! The per-call media session: a sans-IO state machine with two legs.
//!
//! Datagrams and time go in ([`Session::handle_datagram`], [`Session::handle_timeout`]);
//! datagrams to send ([`Session::poll_transmit`]), events ([`Session::poll_event`]) and the
//! next deadline ([`Session::poll_timeout`]) come out. Nothing here reads a clock, touches a
//! socket, allocates after construction or logs.

mod delay;
mod digits;
mod downlink;
mod latch;
mod seq;
mod tx;
mod uplink;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::Digit;

pub use digits::DigitSource;
pub use tx::Transmit;

use self::digits::{DigitMerger, Merged};
use self::downlink::Downlink;
use self::latch::{Admission, Latch};
use self::tx::TxQueue;
use self::uplink::Uplink;
use crate::config::{Codec, Format, Leg, MediaProfile, RemoteMedia, SocketKind};
use crate::error::MediaError;
use crate::metrics::SessionMetrics;
use crate::prompt::{HoldAudio, HoldPlayer, PlayOptions, Prompt, PromptEnd, PromptId};
use crate::rtcp;
use crate::rtp::{RtpPacket, looks_like_rtcp};

/// Largest audio payload carried, in samples (60 ms of G.711).
pub(crate) const MAX_SAMPLES: usize = 480;
/// Largest RTCP compound relayed.
const MAX_RTCP: usize = 1500;
/// Events held for the consumer; beyond this they are counted and dropped.
const MAX_EVENTS: usize = 64;

/// A point on the customer's audio timeline: samples (8 kHz) since its first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaTime(u64);

impl MediaTime {
    pub fn from_samples(samples: u64) -> MediaTime {
        MediaTime(samples)
    }

    pub fn samples(self) -> u64 {
        self.0
    }

    pub fn as_millis(self) -> u64 {
        self.0 / 8
    }
}

/// Where a key press is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigitPhase {
    /// The key is down (confirmed in-band, or the first telephone-event packet).
    Began,
    /// The key was released.
    Ended { end: MediaTime },
}

/// A key the customer pressed. `Debug` does not show which key ([`Digit`] is redacted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigitEvent {
    pub digit: Digit,
    pub source: DigitSource,
    pub phase: DigitPhase,
    /// When the key went down on the customer's timeline.
    pub start: MediaTime,
    /// When the session learned it (the `now` of the call that produced it).
    pub at: Instant,
}

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A key press, once per press whichever way it came.
    Digit(DigitEvent),
    PromptEnded {
        id: PromptId,
        end: PromptEnd,
    },
    /// Symmetric RTP: the leg's peer is now this address (the first valid packet from an
    /// acceptable source, or one the latch moved to; see `session::latch`).
    Latched {
        leg: Leg,
        socket: SocketKind,
        peer: SocketAddr,
    },
}

/// The session's outbox of events, and the digit merger feeding it.
#[derive(Debug)]
pub(crate) struct Events {
    queue: VecDeque<MediaEvent>,
    merger: DigitMerger,
    dropped: u64,
    /// A key went down since the last check (for barge-in).
    key_down: bool,
}

impl Events {
    fn new() -> Events {
        Events {
            queue: VecDeque::with_capacity(MAX_EVENTS),
            merger: DigitMerger::new(),
            dropped: 0,
            key_down: false,
        }
    }

    pub(crate) fn push(&mut self, event: MediaEvent) {
        if self.queue.len() == MAX_EVENTS {
            self.dropped += 1;
        } else {
            self.queue.push_back(event);
        }
    }

    /// A press began at position `start` (`shift`: silence cut from the timeline so far).
    pub(crate) fn began(
        &mut self,
        metrics: &mut SessionMetrics,
        now: Instant,
        source: DigitSource,
        digit: Digit,
        start: u64,
        shift: u64,
    ) {
        if self.merger.began(source, digit, start) == Merged::Absorbed {
            metrics.masking.digits_merged += 1;
            return;
        }
        match source {
            DigitSource::InBand => metrics.masking.digits_in_band += 1,
            DigitSource::Rfc4733 => metrics.masking.digits_rfc4733 += 1,
        }
        self.key_down = true;
        let start = MediaTime(start + shift);
        self.push(MediaEvent::Digit(DigitEvent {
            digit,
            source,
            phase: DigitPhase::Began,
            start,
            at: now,
        }));
    }

    /// A press spanning positions `press.0..press.1` ended.
    pub(crate) fn ended(
        &mut self,
        now: Instant,
        source: DigitSource,
        digit: Digit,
        press: (u64, u64),
        shift: u64,
    ) {
        if self.merger.ended(source, digit, press.0, press.1) == Merged::Absorbed {
            return;
        }
        let phase = DigitPhase::Ended { end: MediaTime(press.1 + shift) };
        let start = MediaTime(press.0 + shift);
        self.push(MediaEvent::Digit(DigitEvent { digit, source, phase, start, at: now }));
    }
}

/// What the two directions need from the session for one input.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) tx: &'a mut TxQueue,
    pub(crate) metrics: &'a mut SessionMetrics,
    pub(crate) events: &'a mut Events,
    pub(crate) hold: Option<&'a mut HoldPlayer>,
    pub(crate) agent_rtp: Option<SocketAddr>,
    pub(crate) agent_pt: u8,
    pub(crate) agent_law: Law,
    pub(crate) customer_rtp: Option<SocketAddr>,
}

/// One leg's far end: what the signalling says and what latching learned.
#[derive(Clone, Copy, Debug, Default)]
struct LegState {
    remote: Option<RemoteMedia>,
    latch: Latch,
}

impl LegState {
    fn rtcp_mux(&self) -> bool {
        self.remote.is_some_and(|r| r.rtcp_mux)
    }

    fn destination(&self, kind: SocketKind) -> Option<SocketAddr> {
        self.latch.peer(kind).or(self.remote.map(|r| r.signalled(kind)))
    }

    /// Where and through which local socket RTCP for this leg goes.
    fn rtcp_route(&self) -> (SocketKind, Option<SocketAddr>) {
        if self.rtcp_mux() {
            (SocketKind::Rtp, self.destination(SocketKind::Rtp))
        } else {
            (SocketKind::Rtcp, self.destination(SocketKind::Rtcp))
        }
    }

    /// What a payload type carries; nothing before the leg's SDP is known (no datagram is
    /// admitted then either).
    fn classify(&self, payload_type: u8) -> Option<Format> {
        self.remote?.payload_types.classify(payload_type)
    }
}

/// One call's media: customer leg (A) and agent leg (B).
///
/// ```
/// use std::time::Instant;
/// use ivrpay_media::{Leg, MediaProfile, PayloadTypes, Codec, RemoteMedia, Session, SocketKind};
///
/// let mut session = Session::new(MediaProfile::default(), 0x1234_5678).expect("valid profile");
/// let customer = "127.0.0.1:50000".parse().unwrap();
/// let agent = "127.0.0.1:40000".parse().unwrap();
/// let pcmu = PayloadTypes::only(Codec::Pcmu);
/// session.set_remote(Leg::Customer, RemoteMedia::new(customer, pcmu)).expect("valid SDP");
/// session.set_remote(Leg::Agent, RemoteMedia::new(agent, pcmu)).expect("valid SDP");
/// let now = Instant::now();
/// // Media is accepted from where the leg's SDP says (see `LatchFrom` for peers behind NAT).
/// let from = customer;
/// let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
/// packet.extend([0xffu8; 160]);
/// session.handle_datagram(now, Leg::Customer, SocketKind::Rtp, from, &packet);
/// while let Some(transmit) = session.poll_transmit() {
///     // send transmit.payload from the agent leg's socket to transmit.destination
/// }
/// while let Some(event) = session.poll_event() { /* digits, prompt ends, latching */ }
/// let _next_deadline = session.poll_timeout(); // call handle_timeout then
/// ```
#[derive(Debug)]
pub struct Session {
    profile: MediaProfile,
    legs: [LegState; 2],
    uplink: Uplink,
    downlink: Downlink,
    events: Events,
    tx: TxQueue,
    metrics: SessionMetrics,
    hold: Option<HoldPlayer>,
    rtcp_buf: Box<[u8; MAX_RTCP]>,
}

impl Session {
    /// `ssrc` names the relay's stream to the customer until the agent sends (prompts and
    /// early media before the agent answers); pick it at random.
    pub fn new(profile: MediaProfile, ssrc: u32) -> Result<Session, MediaError> {
        profile.validate()?;
        Ok(Session {
            profile,
            legs: [LegState::default(); 2],
            uplink: Uplink::new(&profile, Law::Ulaw),
            downlink: Downlink::new(ssrc),
            events: Events::new(),
            tx: TxQueue::new(),
            metrics: SessionMetrics::default(),
            hold: None,
            rtcp_buf: Box::new([0; MAX_RTCP]),
        })
    }

    pub fn profile(&self) -> &MediaProfile {
        &self.profile
    }

    /// Sets a leg's far end from its SDP (offer, answer, early media, re-INVITE). A new
    /// address, or the SDP of another SIP peer, clears what latching learned on that leg.
    pub fn set_remote(&mut self, leg: Leg, remote: RemoteMedia) -> Result<(), MediaError> {
        remote.validate()?;
        let state = &mut self.legs[leg.index()];
        if state.remote.is_some_and(|r| {
            r.rtp != remote.rtp
                || r.rtcp_destination() != remote.rtcp_destination()
                || r.signalling_peer != remote.signalling_peer
        }) {
            state.latch.forget();
        }
        state.remote = Some(remote);
        Ok(())
    }

    pub fn remote(&self, leg: Leg) -> Option<&RemoteMedia> {
        self.legs[leg.index()].remote.as_ref()
    }

    /// Where latching has pinned a leg's socket, if it has.
    pub fn latched(&self, leg: Leg, socket: SocketKind) -> Option<SocketAddr> {
        self.legs[leg.index()].latch.peer(socket)
    }

    fn ctx(&mut self, now: Instant) -> (Ctx<'_>, &mut Uplink, &mut Downlink, &[LegState; 2]) {
        let agent = &self.legs[Leg::Agent.index()];
        let (agent_pt, agent_codec) =
            agent.remote.map_or((0, Codec::Pcmu), |r| r.payload_types.send_format());
        let cx = Ctx {
            now,
            tx: &mut self.tx,
            metrics: &mut self.metrics,
            events: &mut self.events,
            hold: self.hold.as_mut(),
            agent_rtp: agent.destination(SocketKind::Rtp),
            agent_pt,
            agent_law: agent_codec.law(),
            customer_rtp: self.legs[Leg::Customer.index()].destination(SocketKind::Rtp),
        };
        (cx, &mut self.uplink, &mut self.downlink, &self.legs)
    }

    /// A datagram arrived on one of the call's local sockets.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: SocketKind,
        from: SocketAddr,
        data: &[u8],
    ) {
        if socket == SocketKind::Rtcp || looks_like_rtcp(data) {
            self.handle_rtcp(now, leg, socket, from, data);
            return;
        }
        let state = &self.legs[leg.index()];
        let packet = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(_) => {
                self.metrics.leg_mut(leg).malformed += 1;
                return;
            }
        };
        let admitted =
            state.latch.admit(state.remote.as_ref(), &self.profile, SocketKind::Rtp, from, now);
        let Some(admission) = admitted else {
            self.metrics.leg_mut(leg).foreign_source += 1;
            return;
        };
        let Some(format) = state.classify(packet.payload_type) else {
            self.metrics.leg_mut(leg).unknown_payload_type += 1;
            return;
        };
        self.record_admission(now, leg, SocketKind::Rtp, from, admission);
        let m = self.metrics.leg_mut(leg);
        m.rtp_packets_in += 1;
        m.rtp_bytes_in += data.len() as u64;
        let (mut cx, uplink, downlink, legs) = self.ctx(now);
        match leg {
            Leg::Customer => uplink.on_rtp(&mut cx, &packet, format),
            Leg::Agent => {
                let customer = legs[Leg::Customer.index()].remote.as_ref();
                downlink.on_rtp(&mut cx, &packet, format, customer);
            }
        }
        self.after_input();
    }

    fn handle_rtcp(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: SocketKind,
        from: SocketAddr,
        data: &[u8],
    ) {
        let state = &self.legs[leg.index()];
        let admitted = state.latch.admit(state.remote.as_ref(), &self.profile, socket, from, now);
        let Some(admission) = admitted else {
            self.metrics.leg_mut(leg).foreign_source += 1;
            return;
        };
        let len = data.len();
        if len > MAX_RTCP {
            self.metrics.leg_mut(leg).malformed += 1;
            return;
        }
        let buf = &mut self.rtcp_buf[..len];
        buf.copy_from_slice(data);
        let (up_src, up_out) = (self.uplink.source_ssrc(), self.uplink.out_ssrc());
        let (down_src, down_out) = (self.downlink.source_ssrc(), self.downlink.out_ssrc());
        let (uplink, downlink) = (&self.uplink, &self.downlink);
        let rewritten = match leg {
            // The customer reports on its own stream (which the agent knows by the relay's
            // uplink SSRC) and on the relay's downlink stream (the agent's, to the agent).
            Leg::Customer => rtcp::rewrite(
                buf,
                |s| match s {
                    s if Some(s) == up_src => up_out.unwrap_or(s),
                    s if s == down_out => down_src.unwrap_or(s),
                    s => s,
                },
                |s, ts| if Some(s) == up_src { uplink.out_ts_of(ts) } else { ts },
            ),
            Leg::Agent => rtcp::rewrite(
                buf,
                |s| match s {
                    s if Some(s) == down_src => down_out,
                    s if Some(s) == up_out => up_src.unwrap_or(s),
                    s => s,
                },
                |s, ts| if Some(s) == down_src { downlink.out_ts_of(ts) } else { ts },
            ),
        };
        if rewritten.is_err() {
            self.metrics.leg_mut(leg).malformed += 1;
            return;
        }
        self.record_admission(now, leg, socket, from, admission);
        self.metrics.leg_mut(leg).rtcp_packets_in += 1;
        let other = leg.other();
        let (out_socket, destination) = self.legs[other.index()].rtcp_route();
        let buf = &self.rtcp_buf[..len];
        let queued = destination.is_some_and(|dest| {
            self.tx.push(other, out_socket, dest, len, |out| {
                out[..len].copy_from_slice(buf);
                len
            })
        });
        if queued {
            self.metrics.leg_mut(other).rtcp_packets_out += 1;
        } else {
            self.metrics.leg_mut(other).unsent += 1;
        }
    }

    /// A datagram admitted by the latching rules turned out valid: latch, or move the latch,
    /// as they said.
    fn record_admission(
        &mut self,
        now: Instant,
        leg: Leg,
        socket: SocketKind,
        from: SocketAddr,
        admission: Admission,
    ) {
        self.legs[leg.index()].latch.record(socket, from, now, admission);
        if admission == Admission::Moved {
            self.metrics.leg_mut(leg).relatched += 1;
        }
        if admission != Admission::Latched {
            self.events.push(MediaEvent::Latched { leg, socket, peer: from });
        }
    }

    /// Barge-in: a key stops a prompt that allows it.
    fn after_input(&mut self) {
        if std::mem::take(&mut self.events.key_down) && self.downlink.barge_in() {
            self.downlink.stop(&mut self.events, PromptEnd::BargedIn);
        }
        self.metrics.masking.events_dropped = self.events.dropped;
    }

    /// Runs what is due at `now` (reordering and flush deadlines, prompt frames).
    pub fn handle_timeout(&mut self, now: Instant) {
        let (mut cx, uplink, downlink, legs) = self.ctx(now);
        uplink.on_timeout(&mut cx);
        downlink.on_timeout(&mut cx, legs[Leg::Customer.index()].remote.as_ref());
        self.after_input();
    }

    /// When [`Session::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.uplink.poll_timeout(), self.downlink.poll_timeout()].into_iter().flatten().min()
    }

    /// The next datagram to send. Drain these after every `handle_*` call.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.tx.pop()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.queue.pop_front()
    }

    /// Plays a prompt to the customer in place of the agent's audio, replacing any prompt
    /// playing. Its end is reported as [`MediaEvent::PromptEnded`].
    pub fn play_prompt(&mut self, now: Instant, prompt: Prompt, options: PlayOptions) -> PromptId {
        let id = self.downlink.play(now, prompt, options, &mut self.events);
        self.downlink.interrupt();
        id
    }

    pub fn stop_prompt(&mut self) {
        self.downlink.stop(&mut self.events, PromptEnd::Stopped);
    }

    pub fn is_playing(&self) -> bool {
        self.downlink.is_playing()
    }

    /// Puts the agent on hold: the agent hears `audio` instead of the customer, and the
    /// customer no longer hears the agent. Digits are still detected and reported.
    pub fn hold(&mut self, audio: HoldAudio) {
        self.hold = Some(HoldPlayer::new(audio));
        self.downlink.interrupt();
    }

    /// Ends the hold: customer and agent hear each other again.
    pub fn reconnect(&mut self) {
        self.hold = None;
    }

    pub fn is_on_hold(&self) -> bool {
        self.hold.is_some()
    }

    /// The call is over: digits still sounding end, and their events are queued.
    pub fn finish(&mut self, now: Instant) {
        let (mut cx, uplink, downlink, _) = self.ctx(now);
        uplink.finish(&mut cx);
        downlink.stop(cx.events, PromptEnd::Stopped);
        self.after_input();
    }

    pub fn metrics(&self) -> &SessionMetrics {
        &self.metrics
    }

    /// Counts datagrams the socket refused to send.
    pub fn record_send_errors(&mut self, leg: Leg, count: u64) {
        self.metrics.leg_mut(leg).send_errors += count;
    }

    /// Counts an event the consumer had no room for.
    pub fn record_dropped_event(&mut self) {
        self.events.dropped += 1;
        self.metrics.masking.events_dropped = self.events.dropped;
    }

    /// Records the time from a datagram's arrival to the send of what it produced (the
    /// driver measures it; the session has no clock).
    pub fn record_latency(&mut self, latency: Duration) {
        self.metrics.latency.record(latency);
    }
}
