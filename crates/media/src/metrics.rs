//! Counters and a latency histogram, per session and for the whole relay.
//!
//! A session owns plain counters (its driver task is the only writer, so the packet path
//! touches no atomic and no lock). The driver adds each session's increments into the
//! global [`RelayMetrics`] about once a second and when the call closes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: u64,)*
        }

        impl $name {
            /// `(name, value)` of every counter, for exporters.
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($field), self.$field)),*].into_iter()
            }

            fn add(&mut self, other: &$name) {
                $(self.$field += other.$field;)*
            }

            fn since(&self, earlier: &$name) -> $name {
                $name { $($field: self.$field.wrapping_sub(earlier.$field),)* }
            }
        }
    };
}

counters! {
    /// Traffic and faults on one leg.
    LegMetrics {
        /// RTP packets received from the leg and accepted (right address, parsed).
        rtp_packets_in,
        rtp_bytes_in,
        /// RTP packets sent to the leg.
        rtp_packets_out,
        rtp_bytes_out,
        rtcp_packets_in,
        rtcp_packets_out,
        /// Packets missing from the leg's sequence numbers.
        lost,
        /// Packets that came after their audio had been played out (or from before a restart).
        late,
        duplicates,
        /// Datagrams that are not valid RTP/RTCP, or oversize payloads.
        malformed,
        /// RTP with a payload type not negotiated on the leg.
        unknown_payload_type,
        /// Datagrams refused for their source: not the leg's latched peer, nor a source it
        /// may latch onto (see `session::latch`), or before the leg's SDP was known.
        foreign_source,
        /// Times a latched peer was replaced without new SDP (a NAT rebinding, or the SDP's
        /// own address taking over), each within the per-call limit.
        relatched,
        /// Packets not sent: the leg has no destination yet (or the send queue was full).
        unsent,
        /// Packets the socket refused.
        send_errors,
        /// New SSRCs (a new source replacing the previous one).
        source_changes,
    }
}

counters! {
    /// What the session did beyond forwarding.
    MaskingMetrics {
        /// Packets sent to the agent with at least one sample replaced (in-band tone or
        /// telephone-event).
        masked_frames,
        /// Customer samples the in-band masker replaced.
        masked_samples,
        /// Telephone-event packets consumed (never forwarded to the agent).
        events_consumed,
        digits_in_band,
        digits_rfc4733,
        /// The same key press seen both in-band and as telephone-events, reported once.
        digits_merged,
        prompt_frames,
        hold_frames,
        /// Agent audio not forwarded to the customer (prompt playing or on hold).
        agent_audio_suppressed,
        /// Events dropped because the consumer did not keep up.
        events_dropped,
    }
}

/// Latency histogram: bucket `i` counts values below 2^i µs (the last bucket is open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: [u64; Histogram::BUCKETS],
    pub count: u64,
    pub sum_micros: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: [0; Histogram::BUCKETS], count: 0, sum_micros: 0 }
    }
}

impl Histogram {
    pub const BUCKETS: usize = 24;

    pub fn record(&mut self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[bucket.min(Self::BUCKETS - 1)] += 1;
        self.count += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Upper bound of bucket `i`, in µs.
    pub fn bucket_bound_micros(i: usize) -> u64 {
        1u64 << i
    }

    /// Upper bound (µs) of the bucket holding quantile `q` (0..=1); `None` when empty.
    pub fn quantile_micros(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::bucket_bound_micros(i));
            }
        }
        Some(Self::bucket_bound_micros(Self::BUCKETS - 1))
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_micros += other.sum_micros;
    }

    fn since(&self, earlier: &Histogram) -> Histogram {
        let mut d = *self;
        for (a, b) in d.buckets.iter_mut().zip(&earlier.buckets) {
            *a = a.wrapping_sub(*b);
        }
        d.count = self.count.wrapping_sub(earlier.count);
        d.sum_micros = self.sum_micros.wrapping_sub(earlier.sum_micros);
        d
    }
}

/// Everything one call's media counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMetrics {
    pub customer: LegMetrics,
    pub agent: LegMetrics,
    pub masking: MaskingMetrics,
    /// Time from a packet's arrival to the send of what it produced, measured by the driver.
    pub latency: Histogram,
}

impl SessionMetrics {
    pub(crate) fn leg_mut(&mut self, leg: crate::Leg) -> &mut LegMetrics {
        match leg {
            crate::Leg::Customer => &mut self.customer,
            crate::Leg::Agent => &mut self.agent,
        }
    }

    pub fn leg(&self, leg: crate::Leg) -> &LegMetrics {
        match leg {
            crate::Leg::Customer => &self.customer,
            crate::Leg::Agent => &self.agent,
        }
    }

    /// The increments since `earlier` (a previous copy of the same session's metrics).
    pub fn since(&self, earlier: &SessionMetrics) -> SessionMetrics {
        SessionMetrics {
            customer: self.customer.since(&earlier.customer),
            agent: self.agent.since(&earlier.agent),
            masking: self.masking.since(&earlier.masking),
            latency: self.latency.since(&earlier.latency),
        }
    }

    /// Adds another session's counts to these.
    pub fn add(&mut self, other: &SessionMetrics) {
        self.customer.add(&other.customer);
        self.agent.add(&other.agent);
        self.masking.add(&other.masking);
        self.latency.add(&other.latency);
    }
}

/// The relay's totals over all calls, live and closed.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    totals: Mutex<SessionMetrics>,
    active_calls: AtomicU64,
    calls_created: AtomicU64,
    calls_closed: AtomicU64,
    setup_failures: AtomicU64,
}

/// A copy of [`RelayMetrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelaySnapshot {
    pub totals: SessionMetrics,
    pub active_calls: u64,
    pub calls_created: u64,
    pub calls_closed: u64,
    /// Calls that could not get ports or sockets.
    pub setup_failures: u64,
}

impl RelayMetrics {
    /// Adds a session's increments. Called about once a second per call, never per packet.
    pub fn add(&self, delta: &SessionMetrics) {
        // A poisoned lock only means another flush panicked half-way through an addition.
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        totals.add(delta);
    }

    pub(crate) fn call_created(&self) {
        self.active_calls.fetch_add(1, Ordering::Relaxed);
        self.calls_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn call_closed(&self) {
        self.active_calls.fetch_sub(1, Ordering::Relaxed);
        self.calls_closed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn setup_failed(&self) {
        self.setup_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RelaySnapshot {
        let totals = *self.totals.lock().unwrap_or_else(|e| e.into_inner());
        RelaySnapshot {
            totals,
            active_calls: self.active_calls.load(Ordering::Relaxed),
            calls_created: self.calls_created.load(Ordering::Relaxed),
            calls_closed: self.calls_closed.load(Ordering::Relaxed),
            setup_failures: self.setup_failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_micros(0.5), None);
        for us in [0u64, 1, 3, 900, 900, 900, 900, 900, 900, 5000] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count, 10);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets[10], 6);
        assert_eq!(h.quantile_micros(0.5), Some(1024));
        assert_eq!(h.quantile_micros(0.99), Some(8192));
        h.record(Duration::from_secs(3600));
        assert_eq!(h.buckets[Histogram::BUCKETS - 1], 1);
    }

    #[test]
    fn deltas_add_up_to_the_total() {
        let mut m = SessionMetrics::default();
        m.customer.rtp_packets_in = 5;
        m.latency.record(Duration::from_micros(10));
        let first = m;
        m.customer.rtp_packets_in = 12;
        m.masking.digits_in_band = 1;
        m.latency.record(Duration::from_micros(10));
        let relay = RelayMetrics::default();
        relay.add(&first.since(&SessionMetrics::default()));
        relay.add(&m.since(&first));
        assert_eq!(relay.snapshot().totals, m);
    }
}
