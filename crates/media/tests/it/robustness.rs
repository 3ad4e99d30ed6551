//! The network as it is: loss, reordering, duplicates, every packet time, new sources,
//! silence suppression, codec switches and garbage, each over real UDP sockets.

use std::time::Duration;

use ivrpay_audio::g711::Law;
use ivrpay_media::rtp::HEADER_LEN;
use ivrpay_media::{Codec, PayloadTypes};

use crate::support::{
    Expect, Line, Phone, Scenario, TE, Timed, check_agent, check_digits, over_udp, parse_all,
    simulate,
};

/// Speech with in-band keys (one of them long) and a key sent as telephone-events.
fn line_with(phone: Phone) -> Line {
    let mut line = Line::new(phone);
    line.speech(300);
    line.key('1', 100);
    line.speech(200);
    line.key('5', 300);
    line.speech(200);
    line.event_key('9', 120);
    line.speech(200);
    line.key('#', 80);
    line.speech(300);
    line
}

fn is_audio(t: &Timed) -> bool {
    t.bytes[1] & 0x7f != TE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss() {
    let line = line_with(Phone::new(0xA1, Codec::Pcmu));
    // Every ninth packet lost, audio or event: some inside tones, one at a tone's onset.
    let mut schedule = Vec::new();
    let (mut lost, mut lost_audio) = (0u16, 0usize);
    for (i, t) in line.schedule.iter().enumerate() {
        if i % 9 == 4 {
            lost += 1;
            lost_audio += usize::from(is_audio(t));
        } else {
            schedule.push(t.clone());
        }
    }
    let out = over_udp(&Scenario::new(schedule), 30_010).await;
    let expect = Expect { gaps: lost, missing: lost_audio * 160 };
    check_agent(&line, &out, expect, "loss");
    check_digits(&line, &out, "loss");
    assert_eq!(out.metrics.customer.lost, u64::from(lost));
    println!("loss: {lost} of {} customer packets lost ({lost_audio} audio)", line.schedule.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordering_within_the_window_loses_nothing() {
    let line = line_with(Phone::new(0xA2, Codec::Pcmu));
    // Every seventh pair of packets swapped: the later one arrives 4 ms before the earlier.
    let mut schedule = line.schedule.clone();
    let mut swapped = 0;
    let mut i = 3;
    while i + 1 < schedule.len() {
        let (a, b) = (schedule[i].at, schedule[i + 1].at);
        schedule[i].at = b + Duration::from_millis(4);
        schedule[i + 1].at = b;
        let _ = a;
        swapped += 1;
        i += 7;
    }
    schedule.sort_by_key(|t| t.at);
    let out = over_udp(&Scenario::new(schedule), 30_020).await;
    check_agent(&line, &out, Expect::default(), "reorder");
    check_digits(&line, &out, "reorder");
    assert_eq!(out.metrics.customer.lost, 0);
    assert_eq!(out.metrics.customer.late, 0);
    println!("reorder: {swapped} pairs swapped, nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_dropped() {
    let line = line_with(Phone::new(0xA3, Codec::Pcmu));
    let mut schedule = line.schedule.clone();
    let mut dups = 0;
    for (i, t) in line.schedule.iter().enumerate() {
        if i % 5 == 2 {
            // Some right behind the original, some much later.
            let delay = if i % 2 == 0 { 1 } else { 300 };
            schedule
                .push(Timed { at: t.at + Duration::from_millis(delay), bytes: t.bytes.clone() });
            dups += 1;
        }
    }
    schedule.sort_by_key(|t| t.at);
    let out = over_udp(&Scenario::new(schedule), 30_030).await;
    check_agent(&line, &out, Expect::default(), "duplicates");
    check_digits(&line, &out, "duplicates");
    assert_eq!(out.metrics.customer.duplicates, dups);
    println!("duplicates: {dups} sent twice, all dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_packet_time() {
    for (i, ptime) in [10usize, 20, 30, 40].into_iter().enumerate() {
        let mut phone = Phone::new(0xA4 + i as u32, Codec::Pcmu);
        phone.ptime = ptime * 8;
        let line = line_with(phone);
        let out = over_udp(&Scenario::new(line.schedule.clone()), 30_040 + 10 * i as u16).await;
        let label = format!("ptime {ptime} ms");
        check_agent(&line, &out, Expect::default(), &label);
        check_digits(&line, &out, &label);
        // The agent gets the customer's packetisation (shifted by the lookahead).
        let sent: std::collections::HashSet<(u32, usize)> =
            parse_all(&line.schedule.iter().map(|t| (t.at, t.bytes.clone())).collect::<Vec<_>>())
                .iter()
                .filter(|p| p.pt == 0)
                .map(|p| (p.ts, p.payload.len()))
                .collect();
        let agent = parse_all(&out.agent);
        let lookahead = 160;
        let same = agent
            .iter()
            .filter(|p| sent.contains(&(p.ts.wrapping_add(lookahead), p.payload.len())))
            .count();
        assert!(same * 10 >= agent.len() * 9, "{label}: {same} of {} packets as sent", agent.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_source_continues_the_agent_stream() {
    let mut line = line_with(Phone::new(0xA5, Codec::Pcmu));
    line.phone.new_source(0xB5);
    line.key('2', 100);
    line.speech(200);
    line.event_key('3', 100);
    line.speech(300);
    let out = over_udp(&Scenario::new(line.schedule.clone()), 30_080).await;
    check_agent(&line, &out, Expect::default(), "new SSRC");
    check_digits(&line, &out, "new SSRC");
    assert_eq!(out.metrics.customer.source_changes, 1);
    assert!(
        parse_all(&out.agent).iter().all(|p| p.ssrc == 0xA5),
        "the agent stream keeps its SSRC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_suppression_gaps_and_marker_bits() {
    let mut line = Line::new(Phone::new(0xA6, Codec::Pcmu));
    line.speech(300);
    line.key('4', 100);
    line.speech(200);
    line.quiet(500);
    let after_quiet = line.position();
    line.speech(300);
    line.key('6', 100);
    line.quiet(90);
    line.speech(300);
    let out = over_udp(&Scenario::new(line.schedule.clone()), 30_090).await;
    check_agent(&line, &out, Expect::default(), "DTX");
    check_digits(&line, &out, "DTX");
    let packets = parse_all(&out.agent);
    let resumed = packets
        .iter()
        .find(|p| p.ts.wrapping_sub(line.first_ts) as usize == after_quiet)
        .expect("the talkspurt after the pause arrived");
    assert!(resumed.marker, "a talkspurt after silence starts with the marker bit");
    // The first packet and one per talkspurt; a packet the sender was very late with (a busy
    // test machine) would be one more, after the gap it left.
    let markers = packets.iter().filter(|p| p.marker).count();
    let late = out.metrics.customer.late as usize;
    assert!((3..=3 + late).contains(&markers), "{markers} marker bits, {late} late packets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_type_changes_mid_call() {
    let mut line = line_with(Phone::new(0xA7, Codec::Pcmu));
    // The customer switches to A-law (both were negotiated); the agent leg stays on µ-law.
    line.phone.law = Law::Alaw;
    line.phone.pt = 8;
    line.key('8', 100);
    line.speech(300);
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.customer_types = PayloadTypes { pcma: Some(8), ..scenario.customer_types };
    let out = over_udp(&scenario, 30_100).await;
    check_agent(&line, &out, Expect::default(), "PCMU then PCMA");
    check_digits(&line, &out, "PCMU then PCMA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_are_counted_and_change_nothing() {
    let line = line_with(Phone::new(0xA8, Codec::Pcmu));
    let valid = line.schedule[10].bytes.clone();
    let garbage: Vec<Vec<u8>> = vec![
        vec![0x80, 0, 1], // shorter than a header
        {
            let mut v = valid.clone();
            v[0] = 0x40;
            v
        }, // version 1
        {
            let mut v = valid.clone();
            v[0] = 0x8f;
            v.truncate(HEADER_LEN + 8);
            v
        }, // CSRCs overrun
        {
            let mut v = valid.clone();
            v[0] |= 0x20;
            let n = v.len();
            v[n - 1] = 255;
            v
        }, // padding
        {
            let mut v = valid.clone();
            v.resize(HEADER_LEN + 900, 0xff);
            v
        }, // oversize payload
        {
            let mut v = valid.clone();
            v[1] = 96;
            v
        }, // not negotiated
        {
            let mut v = valid.clone();
            v[1] = TE;
            v.truncate(HEADER_LEN + 3);
            v
        }, // bad event
        vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // empty payload
    ];
    let mut schedule = line.schedule.clone();
    for (i, g) in garbage.iter().enumerate() {
        let at = line.schedule[20 + 12 * i].at + Duration::from_millis(3);
        schedule.push(Timed { at, bytes: g.clone() });
    }
    schedule.sort_by_key(|t| t.at);
    let mut scenario = Scenario::new(schedule);
    // Garbage on the RTCP port too.
    scenario.customer_rtcp = vec![
        Timed { at: Duration::from_millis(500), bytes: vec![0x81, 201, 0, 40, 1, 2, 3, 4] },
        Timed { at: Duration::from_millis(600), bytes: vec![1, 2, 3] },
    ];
    let out = over_udp(&scenario, 30_110).await;
    check_agent(&line, &out, Expect::default(), "garbage");
    check_digits(&line, &out, "garbage");
    let m = out.metrics.customer;
    assert_eq!(m.malformed, 8, "{m:?}");
    assert_eq!(m.unknown_payload_type, 1, "{m:?}");
    assert!(out.agent_rtcp.is_empty());
}

/// A sender that restarts its sequence numbers and timestamps without a new SSRC.
#[test]
fn a_restart_of_numbering_is_followed() {
    let mut line = line_with(Phone::new(0xA9, Codec::Pcmu));
    line.phone.seq = line.phone.seq.wrapping_add(30_000);
    line.phone.ts = line.phone.ts.wrapping_sub(80_000);
    line.speech(100);
    line.key('0', 100);
    line.speech(300);
    let out = simulate(&Scenario::new(line.schedule.clone()));
    // The first packet after the jump is dropped until the next confirms the restart.
    check_agent(&line, &out, Expect { gaps: 0, missing: 160 }, "restart");
    check_digits(&line, &out, "restart");
}
