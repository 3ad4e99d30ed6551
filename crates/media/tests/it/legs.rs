//! Both legs' far ends: latching, RTCP, the agent's audio to the customer, prompts, hold.

use std::time::Duration;

use ivrpay_audio::g711::Law;
use ivrpay_media::rtp::HEADER_LEN;
use ivrpay_media::{Codec, HoldAudio, MediaEvent, MediaProfile, PlayOptions, Prompt, PromptEnd};

use crate::support::{
    Control, Expect, Line, Phone, Scenario, Timed, assert_bit_exact, assert_one_clean_stream,
    check_agent, check_digits, ms, over_udp, parse_all, reassemble, simulate, speech, tone,
};

fn customer_line(ssrc: u32) -> Line {
    let mut line = Line::new(Phone::new(ssrc, Codec::Pcmu));
    line.speech(400);
    line.key('3', 100);
    line.speech(400);
    line.key('8', 100);
    line.speech(400);
    line
}

fn agent_line(ssrc: u32, ms_: u64) -> Line {
    let mut line = Line::new(Phone::new(ssrc, Codec::Pcmu));
    line.speech_at = 300.0;
    line.speech(ms_);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latching_follows_the_customer_and_shuts_out_a_third_address() {
    let line = customer_line(0xC1);
    let agent = agent_line(0xD1, 1500);
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.from_agent = agent.schedule.clone();
    // The customer is behind NAT: its SDP names a port nobody listens on.
    scenario.customer_sdp = Some("127.0.0.1:9".parse().expect("addr"));
    // Once the call runs, a third party sends a key, as the customer's stream would.
    let mut intruder = Phone::new(0xC1, Codec::Pcmu);
    intruder.seq = line.phone.seq.wrapping_sub(50);
    let injected = intruder.audio(&tone(ivrpay_dtmf::Digit::from_char('1').expect("key"), ms(200)));
    scenario.intruder = injected
        .into_iter()
        .map(|t| Timed { at: t.at + Duration::from_millis(500), bytes: t.bytes })
        .collect();
    let out = over_udp(&scenario, 30_120).await;
    check_agent(&line, &out, Expect::default(), "latching");
    check_digits(&line, &out, "latching");
    assert_eq!(out.metrics.customer.foreign_source, 10, "the third address was shut out");
    // The agent's audio went where the customer's packets come from, bit-exact.
    let heard = reassemble(&parse_all(&out.customer), agent.first_ts, agent.pcm.len(), Law::Ulaw);
    let (compared, total) = assert_bit_exact(&agent.sent, &heard, &[]);
    assert!(compared + 160 >= total, "the customer heard {compared} of {total} samples");
    let latched = out.events.iter().filter(|e| matches!(e, MediaEvent::Latched { .. })).count();
    assert_eq!(latched, 2, "customer and agent RTP latched: {:?}", out.events);
}

#[test]
fn without_latching_only_the_signalled_address_is_heard() {
    let line = customer_line(0xC2);
    let profile = MediaProfile { latching: false, ..MediaProfile::default() };
    // The SDP names another address than the one sending: nothing gets through.
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.profile = profile;
    scenario.customer_sdp = Some("127.0.0.1:9".parse().expect("addr"));
    let out = simulate(&scenario);
    assert!(out.agent.is_empty());
    assert_eq!(out.metrics.customer.foreign_source, line.schedule.len() as u64);
    assert!(out.presses().is_empty());
    // The signalled address is heard; a third one is not.
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.profile = profile;
    scenario.intruder = line.schedule[..10].to_vec();
    let out = simulate(&scenario);
    check_agent(&line, &out, Expect::default(), "no latching");
    check_digits(&line, &out, "no latching");
    assert_eq!(out.metrics.customer.foreign_source, 10);
}

fn sender_report(ssrc: u32, ts: u32, about: u32) -> Vec<u8> {
    let mut v = vec![0x81, 200, 0, 12];
    v.extend(ssrc.to_be_bytes());
    v.extend([0u8; 8]);
    v.extend(ts.to_be_bytes());
    v.extend([0u8; 8]);
    v.extend(about.to_be_bytes());
    v.extend([0u8; 20]);
    v
}

fn receiver_report(ssrc: u32, about: u32) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend(ssrc.to_be_bytes());
    v.extend(about.to_be_bytes());
    v.extend([0u8; 20]);
    v
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_is_relayed_both_ways_in_the_streams_terms() {
    let mut line = customer_line(0xC3);
    let agent = agent_line(0xD3, 2000);
    // The customer becomes a new source; its reports then use the new SSRC and timeline.
    line.phone.new_source(0xC4);
    let (position, ts) = (line.position(), line.phone.ts);
    line.speech(400);
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.from_agent = agent.schedule.clone();
    let at = line.schedule.last().expect("sent").at;
    // The agent knows the relay's streams as 0xC3 (uplink) and its own 0xD3 (downlink).
    scenario.customer_rtcp = vec![Timed { at, bytes: sender_report(0xC4, ts, 0xD3) }];
    scenario.agent_rtcp = vec![
        Timed { at: at - Duration::from_millis(100), bytes: receiver_report(0xD3, 0xC3) },
        Timed { at, bytes: vec![0x80, 201, 0, 9, 0, 0, 0, 1] }, // length past the datagram
    ];
    let out = over_udp(&scenario, 30_130).await;
    assert_eq!(out.agent_rtcp.len(), 1, "the customer's report reached the agent");
    let sr = &out.agent_rtcp[0].1;
    assert_eq!(word(sr, 4), 0xC3, "sender: the stream the agent receives");
    assert_eq!(word(sr, 16), line.first_ts.wrapping_add(position as u32), "RTP time in its terms");
    assert_eq!(word(sr, 28), 0xD3, "the report block is about the agent's own stream");
    assert_eq!(out.customer_rtcp.len(), 1, "the agent's report reached the customer");
    let rr = &out.customer_rtcp[0].1;
    assert_eq!(word(rr, 4), 0xD3, "sender: the stream the customer receives");
    assert_eq!(word(rr, 8), 0xC4, "the block is about the customer's current source");
    assert_eq!(out.metrics.agent.malformed, 1);
    assert_eq!((out.metrics.customer.rtcp_packets_in, out.metrics.agent.rtcp_packets_out), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_replace_the_agent_and_a_key_barges_in() {
    let agent = agent_line(0xD5, 3000);
    let mut line = Line::new(Phone::new(0xC5, Codec::Pcmu));
    line.speech(1200);
    line.key('5', 100);
    line.speech(1500);
    let key_at = line.keys[0].1.start;
    let prompt = Prompt::from_pcm(speech(600.0, ms(3000)));
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.from_agent = agent.schedule.clone();
    let play_at = Duration::from_millis(500);
    scenario.controls =
        vec![(play_at, Control::Play(prompt.clone(), PlayOptions { barge_in: true }))];
    let out = over_udp(&scenario, 30_140).await;
    check_digits(&line, &out, "prompt");
    let packets = parse_all(&out.customer);
    assert_one_clean_stream(&packets, 0);
    // The customer heard: the agent, then the prompt from its start, then the agent again.
    let frames: Vec<Vec<u8>> = prompt
        .samples()
        .chunks(160)
        .map(|c| {
            let mut v = vec![0u8; c.len()];
            Law::Ulaw.encode_slice(c, &mut v);
            v
        })
        .collect();
    let first = packets.iter().position(|p| p.payload == frames[0]).expect("the prompt started");
    let mut played = 0;
    while packets.get(first + played).is_some_and(|p| p.payload == frames[played]) {
        played += 1;
    }
    assert!(packets[first].marker, "the prompt starts a talkspurt");
    let agent_codes: std::collections::HashSet<&[u8]> =
        agent.schedule.iter().map(|t| &t.bytes[HEADER_LEN..]).collect();
    assert!(packets[..first].iter().all(|p| agent_codes.contains(p.payload.as_slice())));
    let after = &packets[first + played..];
    assert!(!after.is_empty() && after.iter().all(|p| agent_codes.contains(p.payload.as_slice())));
    // Barge-in: the prompt stopped within a few packets of the key's confirmation.
    let prompt_ms = played as u64 * 20;
    let key_ms = key_at as u64 / 8;
    assert!(
        (key_ms.saturating_sub(500)..key_ms.saturating_sub(500) + 120).contains(&prompt_ms),
        "prompt played {prompt_ms} ms; the key came {key_ms} ms into the call"
    );
    let ended: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| if let MediaEvent::PromptEnded { end, .. } = e { Some(*end) } else { None })
        .collect();
    assert_eq!(ended, [PromptEnd::BargedIn]);
    assert!(out.metrics.masking.agent_audio_suppressed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_gives_the_agent_hold_audio_and_reconnect_restores_the_call() {
    let agent = agent_line(0xD6, 3000);
    let mut line = Line::new(Phone::new(0xC6, Codec::Pcmu));
    line.speech(800);
    line.key('6', 100);
    line.speech(1200);
    line.key('2', 100);
    line.speech(600);
    let music = Prompt::from_pcm(speech(900.0, ms(250)));
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.from_agent = agent.schedule.clone();
    let (hold_at, back_at) = (Duration::from_millis(400), Duration::from_millis(1600));
    scenario.controls = vec![
        (hold_at, Control::Hold(HoldAudio::Loop(music.clone()))),
        (back_at, Control::Reconnect),
    ];
    let out = over_udp(&scenario, 30_150).await;
    check_digits(&line, &out, "hold");
    let packets = parse_all(&out.agent);
    assert_one_clean_stream(&packets, 0);
    let heard = reassemble(&packets, line.first_ts, line.pcm.len(), Law::Ulaw);
    // On hold the agent hears the music: every sample is one of the loop's.
    let loop_codes: std::collections::HashSet<u8> =
        music.samples().iter().map(|&s| Law::Ulaw.encode(s)).collect();
    let held = ms(600)..ms(1400);
    assert!(heard.codes[held.clone()].iter().all(|c| c.is_some_and(|c| loop_codes.contains(&c))));
    let held_sent = &line.sent[held];
    let same =
        held_sent.iter().zip(&heard.codes[ms(600)..ms(1400)]).filter(|(s, h)| s == h).count();
    assert!(same < ms(100), "the agent heard the customer on hold ({same} samples)");
    // Back: bit-exact customer audio again (outside the second key).
    let key = &line.keys[1].1;
    let exclude = [0..ms(1800), key.start - ms(20)..key.end + ms(30)];
    let (compared, _) = assert_bit_exact(&line.sent, &heard, &exclude);
    assert!(compared > ms(400), "{compared} samples after reconnecting");
    // Meanwhile the customer did not hear the agent.
    assert!(out.metrics.masking.agent_audio_suppressed >= 50);
    assert!(out.metrics.masking.hold_frames >= 50);
}

#[test]
fn prompts_end_completed_stopped_or_replaced_on_one_clean_stream() {
    let agent = agent_line(0xD7, 2000);
    let mut scenario = Scenario::new(Vec::new());
    scenario.from_agent = agent.schedule.clone();
    let short = Prompt::from_pcm(speech(700.0, ms(200)));
    let long = Prompt::from_pcm(speech(710.0, ms(2000)));
    let options = PlayOptions::default();
    scenario.controls = vec![
        (Duration::from_millis(100), Control::Play(short, options)),
        (Duration::from_millis(500), Control::Play(long.clone(), options)),
        (Duration::from_millis(700), Control::Play(long, options)),
        (Duration::from_millis(1000), Control::StopPrompt),
    ];
    let out = simulate(&scenario);
    let ended: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| if let MediaEvent::PromptEnded { end, .. } = e { Some(*end) } else { None })
        .collect();
    assert_eq!(ended, [PromptEnd::Completed, PromptEnd::Replaced, PromptEnd::Stopped]);
    let packets = parse_all(&out.customer);
    assert_one_clean_stream(&packets, 0);
    // Frames every 20 ms from each start, up to and including the instant of the next
    // command: 10 (the short one, whole), 11 (500..=700 ms), 16 (700..=1000 ms). The rest of
    // what the customer heard is the agent's.
    assert_eq!(out.metrics.masking.prompt_frames, 10 + 11 + 16);
    let forwarded = out.metrics.agent.rtp_packets_in - out.metrics.masking.agent_audio_suppressed;
    assert_eq!(packets.len() as u64, 37 + forwarded);
}
