//! Outgoing datagrams, queued in one preallocated arena until the driver sends them.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::config::{Leg, SocketKind};

/// Bytes for the datagrams one input can produce (a few audio packets, one RTCP compound).
const ARENA: usize = 8 * 1024;
const MAX_ENTRIES: usize = 16;

/// A datagram to send.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The leg whose local socket sends it.
    pub leg: Leg,
    pub socket: SocketKind,
    pub destination: SocketAddr,
    pub payload: &'a [u8],
}

impl std::fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit")
            .field("leg", &self.leg)
            .field("socket", &self.socket)
            .field("destination", &self.destination)
            .field("len", &self.payload.len())
            .finish()
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    leg: Leg,
    socket: SocketKind,
    destination: SocketAddr,
    start: usize,
    len: usize,
}

#[derive(Debug)]
pub(crate) struct TxQueue {
    arena: Box<[u8]>,
    used: usize,
    entries: VecDeque<Entry>,
}

impl TxQueue {
    pub(crate) fn new() -> TxQueue {
        TxQueue {
            arena: vec![0; ARENA].into_boxed_slice(),
            used: 0,
            entries: VecDeque::with_capacity(MAX_ENTRIES),
        }
    }

    /// Queues a datagram of at most `max_len` bytes that `write` fills, returning its length.
    /// Returns false (nothing queued) when the queue is full.
    pub(crate) fn push(
        &mut self,
        leg: Leg,
        socket: SocketKind,
        destination: SocketAddr,
        max_len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        if self.entries.is_empty() {
            self.used = 0;
        }
        if self.entries.len() == MAX_ENTRIES || self.used + max_len > self.arena.len() {
            return false;
        }
        let start = self.used;
        let len = write(&mut self.arena[start..start + max_len]).min(max_len);
        self.used += len;
        self.entries.push_back(Entry { leg, socket, destination, start, len });
        true
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit<'_>> {
        let e = self.entries.pop_front()?;
        Some(Transmit {
            leg: e.leg,
            socket: e.socket,
            destination: e.destination,
            payload: &self.arena[e.start..e.start + e.len],
        })
    }
}
