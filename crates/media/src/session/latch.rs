//! Which sources a leg's media is accepted from, and where the relay sends the leg's media:
//! symmetric RTP ("latching") with the rules that keep a stranger from taking a leg over.
//!
//! Anyone who can reach the relay's ports can send to them. Latching onto whoever sends
//! first would let a racer hear the agent, key digits into a payment and lock the real
//! customer out, so with latching on:
//!
//! 1. **Before latching** a socket accepts only an *acceptable source*: exactly the address
//!    the leg's SDP names for it, or, with [`LatchFrom::SignallingPeer`], any port of the
//!    leg's SIP peer's IP address. Nothing is acceptable before the leg's SDP is known. The
//!    first acceptable, valid datagram latches the socket: the relay sends there from then on.
//! 2. **Once latched** only the latched address is accepted, except that an acceptable
//!    source may *move* the latch:
//!    - exactly the SDP's address takes over at once from a latch made on the SIP peer's IP
//!      alone (someone else behind the peer's address sent first);
//!    - any acceptable source takes over once the latched peer has been silent, on both of
//!      the leg's sockets, for [`SILENCE_BEFORE_MOVE`] (a NAT that rebound the peer's port).
//!
//!    A leg's latch moves at most [`MAX_MOVES`] times per call; each move is counted
//!    (`relatched`) and reported as a new [`MediaEvent::Latched`](super::MediaEvent). When
//!    the leg's RTP latch moves, its RTCP latch is dropped and latches afresh.
//! 3. **A new SDP** that names another address, or comes from another SIP peer, drops the
//!    leg's latches: the signalling vouches for the new address, so this is not a move.
//!
//! Datagrams refused by these rules are counted as `foreign_source`. In [`LatchFrom::Sdp`]
//! mode the only acceptable source is the SDP's address, so a latch never moves without new
//! SDP. With latching off, media is accepted from and sent to the SDP's address only.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::{LatchFrom, MediaProfile, RemoteMedia, SocketKind};

/// How long a latched peer must have sent nothing before another acceptable source may take
/// its place. Long enough that a pause in speech under silence suppression with comfort
/// noise is not taken for a NAT rebinding; short enough that a rebound call recovers.
pub(crate) const SILENCE_BEFORE_MOVE: Duration = Duration::from_secs(2);
/// Moves of one leg's latch per call (the first latch, and latches after new SDP, are not
/// moves). A handful covers NAT rebindings; beyond it the leg stays where it is.
pub(crate) const MAX_MOVES: u8 = 4;

/// Why a datagram is let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// From the latched peer (or, with latching off, from the SDP's address).
    Latched,
    /// From an acceptable source, and the socket had not latched yet.
    First,
    /// From an acceptable source that takes the latch over.
    Moved,
}

/// One leg's latching state: the peer each socket is latched onto, and the moves made.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Latch {
    peers: [Option<SocketAddr>; 2],
    /// When a datagram was last admitted on the leg.
    last_heard: Option<Instant>,
    moves: u8,
}

impl Latch {
    /// Whether a datagram from `from` on socket `kind` belongs to the call, and how; `None`
    /// if it must be refused. Changes nothing: [`Latch::record`] does, once the datagram
    /// turns out valid.
    pub(crate) fn admit(
        &self,
        remote: Option<&RemoteMedia>,
        profile: &MediaProfile,
        kind: SocketKind,
        from: SocketAddr,
        now: Instant,
    ) -> Option<Admission> {
        let remote = remote?;
        let signalled = remote.signalled(kind);
        if !profile.latching {
            return (from == signalled).then_some(Admission::Latched);
        }
        let acceptable = from == signalled
            || (profile.latch_from == LatchFrom::SignallingPeer
                && remote.signalling_peer.is_some_and(|ip| same_ip(ip, from.ip())));
        match self.peers[kind.index()] {
            Some(peer) if peer == from => Some(Admission::Latched),
            None if acceptable => Some(Admission::First),
            Some(peer) if acceptable && self.moves < MAX_MOVES => {
                let sdp_takes_over = from == signalled && peer != signalled;
                (sdp_takes_over || self.silent(now)).then_some(Admission::Moved)
            }
            _ => None,
        }
    }

    /// Takes in a datagram [`Latch::admit`] let in and that turned out valid.
    pub(crate) fn record(
        &mut self,
        kind: SocketKind,
        from: SocketAddr,
        now: Instant,
        admission: Admission,
    ) {
        self.last_heard = Some(now);
        match admission {
            Admission::Latched => {}
            Admission::First => self.peers[kind.index()] = Some(from),
            Admission::Moved => {
                self.peers[kind.index()] = Some(from);
                self.moves += 1;
                if kind == SocketKind::Rtp {
                    self.peers[SocketKind::Rtcp.index()] = None;
                }
            }
        }
    }

    /// The leg's signalling names a new far end: what latching learned no longer holds.
    pub(crate) fn forget(&mut self) {
        self.peers = [None; 2];
    }

    /// The address a socket is latched onto, if it is.
    pub(crate) fn peer(&self, kind: SocketKind) -> Option<SocketAddr> {
        self.peers[kind.index()]
    }

    fn silent(&self, now: Instant) -> bool {
        self.last_heard.is_none_or(|t| now.saturating_duration_since(t) >= SILENCE_BEFORE_MOVE)
    }
}

/// One address whether written as IPv4 or as IPv4-mapped IPv6 (a dual-stack socket's view).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}
