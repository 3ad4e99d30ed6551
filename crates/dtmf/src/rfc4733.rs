//! RFC 4733 telephone-events: the 4-byte payload and a tracker that turns the packets of
//! one key press into one digit.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A sender repeats a report every packet interval with the same RTP timestamp (the
//! event's start) and a growing duration, sets the marker bit on the first packet, and
//! sends the final report (E bit) three times. An event longer than 0xFFFF timestamp units
//! (8.2 s at 8 kHz) is split into segments: each new segment has a new timestamp and no
//! marker bit (§2.5.1.3). Several reports may share one packet; all but the last are
//! complete events that follow each other (§2.5.1.5).

use std::collections::VecDeque;
use std::fmt;

use crate::digit::Digit;

/// Bytes per event report.
pub const REPORT_LEN: usize = 4;
/// An event whose updates stop for this long (timestamp units, 150 ms) without an end
/// report has ended: all its end packets were lost.
const SILENT_END: u32 = 1200;
/// How far short of 0xFFFF a segment may stop (lost final updates) and still be continued.
const SEGMENT_SLACK: u32 = 1600;

/// A malformed telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rfc4733Error {
    /// The payload is empty.
    Empty,
    /// The payload is not a whole number of 4-byte reports.
    BadLength { len: usize },
}

impl fmt::Display for Rfc4733Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rfc4733Error::Empty => f.write_str("telephone-event payload is empty"),
            Rfc4733Error::BadLength { len } => {
                write!(f, "telephone-event payload of {len} bytes is not a multiple of 4")
            }
        }
    }
}

impl std::error::Error for Rfc4733Error {}

/// One event report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventReport {
    /// Event code: 0-15 are the DTMF keys (see [`Digit::from_event_code`]).
    pub event: u8,
    /// E bit: this is the final report of the event.
    pub end: bool,
    /// Power level of the tone, in −dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl fmt::Debug for EventReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The event code of a key is card data.
        f.debug_struct("EventReport")
            .field("event", &"<redacted>")
            .field("end", &self.end)
            .field("volume", &self.volume)
            .field("duration", &self.duration)
            .finish()
    }
}

impl EventReport {
    /// Parses one 4-byte report. The R bit is ignored, as the RFC requires.
    pub fn parse(bytes: [u8; REPORT_LEN]) -> EventReport {
        EventReport {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3f,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        }
    }

    /// The 4-byte wire form (R bit zero, volume limited to 6 bits).
    pub fn to_bytes(&self) -> [u8; REPORT_LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3f), d0, d1]
    }
}

/// Parses a payload into its reports.
pub fn parse_payload(
    payload: &[u8],
) -> Result<impl Iterator<Item = EventReport> + '_, Rfc4733Error> {
    if payload.is_empty() {
        return Err(Rfc4733Error::Empty);
    }
    if payload.len() % REPORT_LEN != 0 {
        return Err(Rfc4733Error::BadLength { len: payload.len() });
    }
    Ok(payload.chunks_exact(REPORT_LEN).map(|c| EventReport::parse([c[0], c[1], c[2], c[3]])))
}

/// The packets a well-behaved sender emits for one key press of `duration` timestamp units,
/// one every `interval` units: `(marker, report)` pairs, all sent with the same RTP
/// timestamp (segmentation of events over 0xFFFF is not generated).
pub fn key_press(
    digit: Digit,
    duration: u16,
    interval: u16,
    volume: u8,
) -> Vec<(bool, EventReport)> {
    let interval = interval.max(1);
    let mut packets = Vec::new();
    let mut elapsed = interval.min(duration);
    loop {
        let report =
            EventReport { event: digit.event_code(), end: false, volume, duration: elapsed };
        packets.push((packets.is_empty(), report));
        if elapsed >= duration {
            break;
        }
        elapsed = elapsed.saturating_add(interval).min(duration);
    }
    let last = EventReport { event: digit.event_code(), end: true, volume, duration };
    for _ in 0..3 {
        packets.push((false, last));
    }
    packets
}

/// What the tracker reports, with RTP timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerEvent {
    /// A key press began at `timestamp`.
    Began { digit: Digit, timestamp: u32 },
    /// The key press that began at `timestamp` lasted `duration` units.
    Ended { digit: Digit, timestamp: u32, duration: u32 },
}

#[derive(Clone, Copy, Debug)]
struct Current {
    code: u8,
    digit: Digit,
    /// Timestamp of the first segment: the start of the key press.
    start: u32,
    /// Timestamp of the segment being received.
    segment: u32,
    /// Duration of earlier segments.
    earlier: u32,
    /// Longest duration seen in this segment.
    duration: u32,
    ended: bool,
}

impl Current {
    fn total(&self) -> u32 {
        self.earlier + self.duration
    }
}

/// Turns event packets into one `Began`/`Ended` pair per key press: duplicates (same
/// timestamp), the three end reports, late packets, segments of long events and lost end
/// packets are all handled.
#[derive(Clone, Debug, Default)]
pub struct EventTracker {
    current: Option<Current>,
    events: VecDeque<TrackerEvent>,
}

impl EventTracker {
    pub fn new() -> EventTracker {
        EventTracker::default()
    }

    /// Handles the payload of a telephone-event packet with this RTP timestamp and marker.
    pub fn handle(
        &mut self,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), Rfc4733Error> {
        let mut at = timestamp;
        for (i, report) in parse_payload(payload)?.enumerate() {
            self.handle_report(at, marker && i == 0, report);
            at = at.wrapping_add(u32::from(report.duration));
        }
        Ok(())
    }

    /// Ends an event whose updates stopped without an end report. `now` is the current
    /// RTP timestamp of the stream.
    pub fn expire(&mut self, now: u32) {
        if let Some(cur) = self.current {
            let last = cur.segment.wrapping_add(cur.duration);
            if !cur.ended && (now.wrapping_sub(last) as i32) > SILENT_END as i32 {
                self.end_current();
            }
        }
    }

    /// Whether a key press is in progress.
    pub fn is_active(&self) -> bool {
        self.current.is_some_and(|c| !c.ended)
    }

    pub fn poll_event(&mut self) -> Option<TrackerEvent> {
        self.events.pop_front()
    }

    fn handle_report(&mut self, ts: u32, marker: bool, report: EventReport) {
        let Some(digit) = Digit::from_event_code(report.event) else {
            return; // not a key (flash, tones, ...): nothing to collect or mask
        };
        let duration = u32::from(report.duration);
        if let Some(cur) = &mut self.current {
            if ts == cur.segment {
                if report.event == cur.code {
                    cur.duration = cur.duration.max(duration);
                    if report.end && !cur.ended {
                        self.end_current();
                    }
                }
                return;
            }
            let ahead = ts.wrapping_sub(cur.segment);
            if (ahead as i32) < 0 {
                return; // a late packet of an earlier event
            }
            let continues = !cur.ended
                && !marker
                && report.event == cur.code
                && cur.duration + SEGMENT_SLACK >= u32::from(u16::MAX)
                && ahead <= u32::from(u16::MAX) + SEGMENT_SLACK;
            if continues {
                cur.earlier += ahead;
                cur.segment = ts;
                cur.duration = duration;
                if report.end {
                    self.end_current();
                }
                return;
            }
            if !cur.ended {
                self.end_current();
            }
        }
        self.current = Some(Current {
            code: report.event,
            digit,
            start: ts,
            segment: ts,
            earlier: 0,
            duration,
            ended: false,
        });
        self.events.push_back(TrackerEvent::Began { digit, timestamp: ts });
        if report.end {
            self.end_current();
        }
    }

    fn end_current(&mut self) {
        if let Some(cur) = &mut self.current {
            if !cur.ended {
                cur.ended = true;
                self.events.push_back(TrackerEvent::Ended {
                    digit: cur.digit,
                    timestamp: cur.start,
                    duration: cur.total(),
                });
            }
        }
    }
}
