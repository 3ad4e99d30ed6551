//! RFC 4733: the payload codec and the tracker that makes one digit of one key press.

use ivrpay_dtmf::Digit;
use ivrpay_dtmf::rfc4733::{
    EventReport, EventTracker, Rfc4733Error, TrackerEvent, key_press, parse_payload,
};

fn key(c: char) -> Digit {
    Digit::from_char(c).expect("a key")
}

fn drain(tracker: &mut EventTracker) -> Vec<TrackerEvent> {
    std::iter::from_fn(|| tracker.poll_event()).collect()
}

fn digits(events: &[TrackerEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TrackerEvent::Ended { digit, .. } => Some(digit.as_char()),
            TrackerEvent::Began { .. } => None,
        })
        .collect()
}

#[test]
fn payload_round_trips_and_ignores_the_reserved_bit() {
    let report = EventReport { event: 11, end: true, volume: 10, duration: 1600 };
    let bytes = report.to_bytes();
    assert_eq!(bytes, [11, 0x8a, 0x06, 0x40]);
    assert_eq!(EventReport::parse(bytes), report);
    // R bit set by a sloppy sender: ignored.
    assert_eq!(EventReport::parse([11, 0xca, 0x06, 0x40]), report);
    let two: Vec<u8> = [report.to_bytes(), report.to_bytes()].concat();
    assert_eq!(parse_payload(&two).map(|r| r.count()), Ok(2));
}

#[test]
fn malformed_payloads_are_rejected_with_a_reason() {
    assert_eq!(parse_payload(&[]).err(), Some(Rfc4733Error::Empty));
    assert_eq!(parse_payload(&[1, 2, 3]).err(), Some(Rfc4733Error::BadLength { len: 3 }));
    assert_eq!(
        Rfc4733Error::BadLength { len: 5 }.to_string(),
        "telephone-event payload of 5 bytes is not a multiple of 4"
    );
    let mut tracker = EventTracker::new();
    assert!(tracker.handle(0, true, &[1, 2, 3, 4, 5]).is_err());
    assert!(drain(&mut tracker).is_empty());
}

#[test]
fn report_debug_hides_the_key() {
    let report = EventReport { event: 7, end: false, volume: 10, duration: 160 };
    assert!(!format!("{report:?}").contains("event: 7"));
}

/// A well-behaved sender: marker on the first packet, updates every 50 ms, three end
/// reports. Sixteen keys give sixteen digits, each once, with their timestamps and durations.
#[test]
fn one_key_press_is_one_digit() {
    let mut tracker = EventTracker::new();
    let mut ts = 1000u32;
    for d in Digit::ALL {
        for (marker, report) in key_press(d, 800, 400, 10) {
            tracker.handle(ts, marker, &report.to_bytes()).expect("valid");
        }
        ts += 2000;
    }
    let events = drain(&mut tracker);
    assert_eq!(digits(&events), "123A456B789C*0#D");
    assert_eq!(events.len(), 32, "one Began and one Ended per key");
    assert_eq!(events[0], TrackerEvent::Began { digit: key('1'), timestamp: 1000 });
    assert_eq!(events[1], TrackerEvent::Ended { digit: key('1'), timestamp: 1000, duration: 800 });
}

/// Duplicated, reordered and late packets change nothing.
#[test]
fn duplicates_and_reordering_are_absorbed() {
    let mut tracker = EventTracker::new();
    let packets = key_press(key('5'), 1200, 400, 10);
    let mut order: Vec<usize> = (0..packets.len()).collect();
    order.swap(1, 2); // an update arrives before the previous one
    for &i in &order {
        let (marker, report) = packets[i];
        tracker.handle(160, marker, &report.to_bytes()).expect("valid");
        tracker.handle(160, marker, &report.to_bytes()).expect("valid"); // duplicated
    }
    // The next key, then a straggler of the first.
    for (marker, report) in key_press(key('6'), 800, 400, 10) {
        tracker.handle(4000, marker, &report.to_bytes()).expect("valid");
    }
    tracker.handle(160, false, &packets[0].1.to_bytes()).expect("valid");
    assert_eq!(digits(&drain(&mut tracker)), "56");
}

/// Same key twice: two presses, because the timestamps differ.
#[test]
fn the_same_key_twice_is_two_digits() {
    let mut tracker = EventTracker::new();
    for ts in [0u32, 2400] {
        for (marker, report) in key_press(key('0'), 800, 400, 10) {
            tracker.handle(ts, marker, &report.to_bytes()).expect("valid");
        }
    }
    assert_eq!(digits(&drain(&mut tracker)), "00");
}

/// All end packets lost: the next key ends the first; silence ends the last.
#[test]
fn lost_end_packets_still_end_the_digit() {
    let mut tracker = EventTracker::new();
    for (marker, report) in key_press(key('7'), 800, 400, 10).into_iter().filter(|(_, r)| !r.end) {
        tracker.handle(0, marker, &report.to_bytes()).expect("valid");
    }
    for (marker, report) in key_press(key('8'), 800, 400, 10).into_iter().filter(|(_, r)| !r.end) {
        tracker.handle(2000, marker, &report.to_bytes()).expect("valid");
    }
    assert_eq!(digits(&drain(&mut tracker)), "7");
    tracker.expire(2000 + 800 + 1000);
    assert!(tracker.is_active(), "not yet: 125 ms of silence is within the limit");
    tracker.expire(2000 + 800 + 1300);
    assert_eq!(digits(&drain(&mut tracker)), "8");
    assert!(!tracker.is_active());
}

/// The first packets (with the marker) lost: the digit starts at the first one seen.
#[test]
fn a_press_whose_first_packets_were_lost_is_still_reported() {
    let mut tracker = EventTracker::new();
    for (marker, report) in key_press(key('9'), 1600, 400, 10).into_iter().skip(2) {
        tracker.handle(500, marker, &report.to_bytes()).expect("valid");
    }
    let events = drain(&mut tracker);
    assert_eq!(digits(&events), "9");
    assert!(matches!(events[1], TrackerEvent::Ended { duration: 1600, .. }));
}

/// A key held for 20 s is split by the sender into 0xFFFF-long segments with new timestamps
/// and no marker (§2.5.1.3): one digit, with the whole duration.
#[test]
fn a_long_press_split_into_segments_is_one_digit() {
    let mut tracker = EventTracker::new();
    let total = 160_000u32; // 20 s
    let (mut segment_start, mut elapsed) = (7u32, 0u32);
    let mut first = true;
    while elapsed < total {
        let seg_len = (total - elapsed).min(0xFFFF);
        let mut d = 0u32;
        while d < seg_len {
            d = (d + 400).min(seg_len);
            let last = elapsed + d == total;
            let report = EventReport {
                event: key('#').event_code(),
                end: last,
                volume: 10,
                duration: d as u16,
            };
            for _ in 0..if last { 3 } else { 1 } {
                tracker.handle(segment_start, first, &report.to_bytes()).expect("valid");
                first = false;
            }
        }
        elapsed += seg_len;
        segment_start = segment_start.wrapping_add(seg_len);
    }
    let events = drain(&mut tracker);
    assert_eq!(digits(&events), "#");
    assert_eq!(events[1], TrackerEvent::Ended { digit: key('#'), timestamp: 7, duration: total });
}

/// Timestamps wrap around 2³².
#[test]
fn timestamps_wrap() {
    let mut tracker = EventTracker::new();
    for ts in [u32::MAX - 500, 1500] {
        for (marker, report) in key_press(key('A'), 800, 400, 10) {
            tracker.handle(ts, marker, &report.to_bytes()).expect("valid");
        }
    }
    assert_eq!(digits(&drain(&mut tracker)), "AA");
}

/// Events that are not keys (flash, 16) are ignored.
#[test]
fn non_key_events_are_ignored() {
    let mut tracker = EventTracker::new();
    let flash = EventReport { event: 16, end: true, volume: 10, duration: 800 };
    tracker.handle(0, true, &flash.to_bytes()).expect("valid");
    assert!(drain(&mut tracker).is_empty());
}

/// Random payloads, timestamps and markers: never a panic, never more digits than presses.
#[test]
fn random_packets_never_panic() {
    let mut rng = crate::signal::Rng::new(31);
    let mut tracker = EventTracker::new();
    for _ in 0..100_000 {
        let len = rng.below(13);
        let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = tracker.handle(rng.next_u64() as u32, rng.unit() < 0.5, &payload);
        tracker.expire(rng.next_u64() as u32);
        while tracker.poll_event().is_some() {}
    }
}
