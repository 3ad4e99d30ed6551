//! Who a message comes from or goes to, and the bytes that leave.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A transport connection the driver knows by number (a TCP connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// How a peer is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    /// A TCP connection: responses go back on it; a request to an address with no open
    /// connection asks the driver to open one (`Tcp(None)`).
    Tcp(Option<ConnectionId>),
}

impl Transport {
    /// Whether the transport retransmits by itself (RFC 3261 §17: no timers A, E, G).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp(_))
    }

    /// The name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) => "TCP",
        }
    }
}

/// The other end of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer { transport: Transport::Udp, addr }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.via_name().to_ascii_lowercase(), self.addr)
    }
}

/// Bytes to send.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// The local address to send from (the listen address of the profile concerned).
    pub local: SocketAddr,
    pub to: Peer,
    pub bytes: Bytes,
}
