//! Keys in every form through the relay, with the eavesdropper's decoders on the agent leg.

use ivrpay_dtmf::MaskMode;
use std::time::Duration;

use ivrpay_media::{Codec, DigitSource, MediaProfile, RuntimeConfig};
use ivrpay_testkit::oracle;

use crate::support::{
    Expect, Line, Outcome, Phone, Scenario, TE, check_agent, check_digits, over_udp, parse_all,
    simulate,
};

/// In-band keys between speech, keys sent only as telephone-events, and keys sent both ways.
fn customer_line() -> Line {
    let mut line = Line::new(Phone::new(0x1111_2222, Codec::Pcmu));
    line.speech(300);
    for c in ['4', '2', '4', '2'] {
        line.key(c, 100);
        line.speech(250);
    }
    line.event_key('7', 100);
    line.speech(250);
    line.both_key('9', 120);
    line.speech(250);
    line.key('#', 45);
    line.speech(200);
    line.event_key('0', 60);
    line.speech(300);
    line
}

fn check_sources(line: &Line, out: &Outcome, label: &str) {
    check_digits(line, out, label);
    let presses = out.presses();
    // Event-only keys can only have come from the events; in-band-only ones from the audio.
    let sources: Vec<DigitSource> = presses.iter().map(|p| p.1).collect();
    assert_eq!(sources[0], DigitSource::InBand);
    assert_eq!(sources[4], DigitSource::Rfc4733);
    assert_eq!(out.metrics.masking.events_consumed, line.te_packets as u64, "{label}");
    assert_eq!(out.metrics.masking.digits_merged, 1, "{label}: the key sent both ways");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_agent_over_udp() {
    let line = customer_line();
    // The control: the customer's own audio is decoded (the oracles are not deaf).
    let in_band: String = line
        .keys
        .iter()
        .filter(|(_, r)| line.sent[r.start].is_some())
        .map(|(d, _)| d.as_char())
        .collect();
    assert_eq!(
        oracle::spandsp(&line.pcm, false),
        in_band,
        "control: spandsp on the customer's audio"
    );
    let out = over_udp(&Scenario::new(line.schedule.clone()), 30_000).await;
    check_agent(&line, &out, Expect::default(), "udp, tone mode");
    check_sources(&line, &out, "udp");
}

/// The same call on the relay's own threads, coalescing wake-ups from the first call: the
/// ticks delay datagrams but must not drop, reorder or unmask any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_agent_when_wake_ups_are_coalesced() {
    let line = customer_line();
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.runtime =
        Some(RuntimeConfig { threads: 1, tick: Duration::from_micros(500), coalesce_from: 1 });
    let out = over_udp(&scenario, 30_060).await;
    check_agent(&line, &out, Expect::default(), "udp, coalesced wake-ups");
    check_sources(&line, &out, "udp, coalesced wake-ups");
}

#[test]
fn keys_never_reach_the_agent_in_every_mode() {
    let line = customer_line();
    for mode in [MaskMode::Tone, MaskMode::Silence, MaskMode::Noise] {
        let mut scenario = Scenario::new(line.schedule.clone());
        scenario.profile = MediaProfile { mask_mode: mode, ..MediaProfile::default() };
        let out = simulate(&scenario);
        let heard = check_agent(&line, &out, Expect::default(), mode.name());
        check_sources(&line, &out, mode.name());
        // The agent hears the replacement over every key: the flat tone, silence or noise.
        for (_, r) in &line.keys {
            let x = &heard.pcm[r.start + 80..r.end - 80];
            let rms =
                (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
            let expected = match mode {
                MaskMode::Tone => 800.0..2000.0,
                MaskMode::Silence => 0.0..1.0,
                MaskMode::Noise => 0.0..40.0,
            };
            assert!(expected.contains(&rms), "{}: rms {rms:.1} over key {r:?}", mode.name());
        }
    }
}

/// Telephone-events on an agent leg that negotiated them still never reach it.
#[test]
fn telephone_events_are_consumed_even_when_the_agent_negotiated_them() {
    let mut line = Line::new(Phone::new(7, Codec::Pcmu));
    line.speech(200);
    line.event_key('5', 200);
    line.speech(200);
    let out = simulate(&Scenario::new(line.schedule.clone()));
    let packets = parse_all(&out.agent);
    assert!(packets.iter().all(|p| p.pt != TE));
    assert_eq!(out.digit_string(), "5");
}
