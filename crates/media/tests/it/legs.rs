//! Both legs' far ends: latching (and racers refused), RTCP, the agent's audio to the customer, prompts, hold.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;
use ivrpay_media::rtp::HEADER_LEN;
use ivrpay_media::{
    Codec, HoldAudio, LatchFrom, Leg, MediaEvent, MediaProfile, PayloadTypes, PlayOptions, Prompt,
    PromptEnd, RemoteMedia, Session, SocketKind,
};

use crate::support::{
    Control, Expect, Line, Outcome, Phone, Scenario, Timed, assert_bit_exact,
    assert_one_clean_stream, check_agent, check_digits, ms, over_udp, parse_all, reassemble,
    samples_to_duration, simulate, speech, tone,
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

/// A key the third party sends both ways (tone and telephone-events), `at` into the call.
fn racer_key(phone: &mut Phone, key: char, at: Duration) -> Vec<Timed> {
    let digit = ivrpay_dtmf::Digit::from_char(key).expect("key");
    let start = samples_to_duration(phone.clock);
    let mut sent = phone.both(digit, &tone(digit, ms(200)));
    sent.extend(phone.audio(&vec![0; ms(100)]));
    sent.into_iter().map(|t| Timed { at: t.at - start + at, bytes: t.bytes }).collect()
}

/// The agent heard the customer alone, ivrpay heard the customer's keys alone, the customer
/// heard the agent (but for `unheard`: the agent's audio before a customer behind NAT first
/// sent, which went to its SDP's address), and nothing went to the third party.
fn check_only_the_customer_counts(
    line: &Line,
    agent: &Line,
    out: &Outcome,
    unheard: std::ops::Range<usize>,
    label: &str,
) {
    check_agent(line, out, Expect::default(), label);
    check_digits(line, out, label);
    let heard = reassemble(&parse_all(&out.customer), agent.first_ts, agent.pcm.len(), Law::Ulaw);
    let (compared, total) = assert_bit_exact(&agent.sent, &heard, &[unheard]);
    assert!(compared + 160 >= total, "{label}: the customer heard {compared} of {total} samples");
    assert!(
        out.intruder.is_empty(),
        "{label}: the third party got {} datagrams",
        out.intruder.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racer_before_and_during_the_call_is_refused() {
    let racer_ip = IpAddr::from([127, 0, 0, 2]);
    // By default only the SDP's address counts; with sip-peer a customer behind NAT (its SDP
    // names a port nobody sends from) is latched from its SIP peer's IP, and the racer,
    // elsewhere, is still refused.
    let nat = Some("127.0.0.1:9".parse().expect("addr"));
    let modes = [
        ("latch_from = sdp", LatchFrom::Sdp, None, None),
        ("latch_from = sip-peer", LatchFrom::SignallingPeer, nat, Some([127, 0, 0, 1].into())),
    ];
    for (i, (label, latch_from, customer_sdp, customer_peer)) in modes.into_iter().enumerate() {
        let mut line = customer_line(0xC7 + i as u32);
        let agent = agent_line(0xD7 + i as u32, 2000);
        // The racer sends for 300 ms before the customer's first packet, and again mid-call,
        // keys the customer never pressed, on a stream like the customer's.
        let mut racer = Phone::new(0xC7 + i as u32, Codec::Pcmu);
        racer.seq = line.phone.seq.wrapping_sub(100);
        let mut injected = racer_key(&mut racer, '1', Duration::ZERO);
        injected.extend(racer_key(&mut racer, '9', Duration::from_millis(900)));
        let customer_starts = Duration::from_millis(300);
        for t in &mut line.schedule {
            t.at += customer_starts;
        }
        let mut scenario = Scenario::new(line.schedule.clone());
        scenario.from_agent = agent.schedule.clone();
        scenario.profile = MediaProfile { latch_from, ..MediaProfile::default() };
        scenario.customer_sdp = customer_sdp;
        scenario.customer_peer = customer_peer;
        scenario.intruder_ip = racer_ip;
        scenario.intruder = injected.clone();
        let out = over_udp(&scenario, 30_160 + 10 * i as u16).await;
        let unheard = if customer_sdp.is_some() { 0..ms(400) } else { 0..0 };
        check_only_the_customer_counts(&line, &agent, &out, unheard, label);
        assert_eq!(out.metrics.customer.foreign_source, injected.len() as u64, "{label}");
        assert_eq!(out.metrics.customer.relatched, 0, "{label}");
        let latched: Vec<_> = out
            .events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Latched { leg: Leg::Customer, peer, .. } => Some(*peer),
                _ => None,
            })
            .collect();
        assert!(
            latched.len() == 1 && latched[0].ip() != racer_ip,
            "{label}: the customer leg latched onto {latched:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sip_peer_a_customer_behind_nat_is_latched_and_a_third_port_shut_out() {
    let line = customer_line(0xC1);
    let agent = agent_line(0xD1, 1500);
    let mut scenario = Scenario::new(line.schedule.clone());
    scenario.from_agent = agent.schedule.clone();
    // The customer is behind NAT: its SDP names a port nobody listens on. Its SIP peer's IP
    // is where its media comes from.
    scenario.customer_sdp = Some("127.0.0.1:9".parse().expect("addr"));
    scenario.customer_peer = Some([127, 0, 0, 1].into());
    scenario.profile = MediaProfile { latch_from: LatchFrom::SignallingPeer, ..scenario.profile };
    // Once the call runs, another port of the same IP sends a key, as the customer's stream
    // would: the latched customer is not silent, so it is refused.
    scenario.intruder_ip = [127, 0, 0, 1].into();
    let mut intruder = Phone::new(0xC1, Codec::Pcmu);
    intruder.seq = line.phone.seq.wrapping_sub(50);
    let injected = intruder.audio(&tone(ivrpay_dtmf::Digit::from_char('1').expect("key"), ms(200)));
    scenario.intruder = injected
        .into_iter()
        .map(|t| Timed { at: t.at + Duration::from_millis(500), bytes: t.bytes })
        .collect();
    let out = over_udp(&scenario, 30_120).await;
    check_only_the_customer_counts(&line, &agent, &out, 0..0, "sip-peer");
    assert_eq!(out.metrics.customer.foreign_source, 10, "the third port was shut out");
    let latched = out.events.iter().filter(|e| matches!(e, MediaEvent::Latched { .. })).count();
    assert_eq!(latched, 2, "customer and agent RTP latched: {:?}", out.events);
    // The price of the default: with latch_from = sdp the same customer is not heard at all.
    scenario.profile.latch_from = LatchFrom::Sdp;
    let out = simulate(&scenario);
    assert!(out.agent.is_empty() && out.presses().is_empty(), "latch_from = sdp let NAT in");
    assert_eq!(out.metrics.customer.foreign_source, (line.schedule.len() + 10) as u64);
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

/// Drives one session by hand on a simulated clock: a customer packet from an address, and
/// where the agent's next packet is sent.
struct Latching {
    session: Session,
    t0: Instant,
    customer: Phone,
    agent: Phone,
}

impl Latching {
    fn new(latch_from: LatchFrom, sdp: &str, sip_peer: &str) -> Latching {
        let profile = MediaProfile { latch_from, ..MediaProfile::default() };
        let mut session = Session::new(profile, 0xAB).expect("session");
        let customer = RemoteMedia {
            signalling_peer: Some(sip_peer.parse().expect("ip")),
            ..RemoteMedia::new(sdp.parse().expect("addr"), PayloadTypes::only(Codec::Pcmu))
        };
        session.set_remote(Leg::Customer, customer).expect("sdp");
        let agent =
            RemoteMedia::new("127.0.0.1:6000".parse().expect("addr"), customer.payload_types);
        session.set_remote(Leg::Agent, agent).expect("sdp");
        #[allow(clippy::disallowed_methods, reason = "the simulated clock needs an origin")]
        let t0 = Instant::now();
        Latching {
            session,
            t0,
            customer: Phone::new(0xC9, Codec::Pcmu),
            agent: Phone::new(0xD9, Codec::Pcmu),
        }
    }

    /// A customer packet from `from`, `at_ms` into the call; whether it was taken in.
    fn customer_sends(&mut self, at_ms: u64, from: &str) -> bool {
        let packet = self.customer.audio(&[0; 160]).remove(0).bytes;
        let before = self.session.metrics().customer.rtp_packets_in;
        let now = self.t0 + Duration::from_millis(at_ms);
        let from = from.parse().expect("addr");
        self.session.handle_datagram(now, Leg::Customer, SocketKind::Rtp, from, &packet);
        while self.session.poll_transmit().is_some() {}
        self.session.metrics().customer.rtp_packets_in > before
    }

    /// A customer receiver report from `from`, `at_ms` into the call; whether it was taken in.
    fn customer_reports(&mut self, at_ms: u64, from: &str) -> bool {
        let before = self.session.metrics().customer.rtcp_packets_in;
        let now = self.t0 + Duration::from_millis(at_ms);
        let report = receiver_report(0xC9, 0xD9);
        let from = from.parse().expect("addr");
        self.session.handle_datagram(now, Leg::Customer, SocketKind::Rtcp, from, &report);
        while self.session.poll_transmit().is_some() {}
        self.session.metrics().customer.rtcp_packets_in > before
    }

    /// Where the agent's audio goes now.
    fn agent_audio_goes_to(&mut self, at_ms: u64) -> Option<SocketAddr> {
        let packet = self.agent.audio(&[0; 160]).remove(0).bytes;
        let now = self.t0 + Duration::from_millis(at_ms);
        let from = "127.0.0.1:6000".parse().expect("addr");
        self.session.handle_datagram(now, Leg::Agent, SocketKind::Rtp, from, &packet);
        let mut to = None;
        while let Some(t) = self.session.poll_transmit() {
            if t.leg == Leg::Customer {
                to = Some(t.destination);
            }
        }
        to
    }

    fn customer_latched_onto(&mut self) -> Vec<SocketAddr> {
        std::iter::from_fn(|| self.session.poll_event())
            .filter_map(|e| match e {
                MediaEvent::Latched { leg: Leg::Customer, peer, .. } => Some(peer),
                _ => None,
            })
            .collect()
    }
}

fn at(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn a_latch_moves_only_after_silence_from_an_acceptable_source_at_most_four_times() {
    // sip-peer: the SDP names a private address; the SIP peer is 203.0.113.5.
    let mut call = Latching::new(LatchFrom::SignallingPeer, "192.168.1.10:4000", "203.0.113.5");
    assert!(!call.customer_sends(0, "198.51.100.7:4000"), "another IP, before latching");
    assert!(call.customer_sends(20, "203.0.113.5:30000"));
    assert_eq!(call.customer_latched_onto(), [at("203.0.113.5:30000")]);
    assert_eq!(call.agent_audio_goes_to(30), Some(at("203.0.113.5:30000")));
    // Another port of the peer's IP while the latched one is live: refused.
    assert!(!call.customer_sends(1020, "203.0.113.5:30002"));
    assert!(call.customer_sends(1500, "203.0.113.5:30000"));
    assert!(!call.customer_sends(3499, "203.0.113.5:30002"), "silent 1.999 s only");
    // Silent for 2 s: a NAT rebinding, the port moves.
    let mut last = 3500;
    for (n, port) in [30002, 30004, 30006, 30008].into_iter().enumerate() {
        let from = format!("203.0.113.5:{port}");
        assert!(!call.customer_sends(last + 2000, "198.51.100.7:4000"), "never another IP");
        assert!(call.customer_sends(last + 2000, &from), "move {}", n + 1);
        assert_eq!(call.customer_latched_onto(), [at(&from)]);
        assert_eq!(call.agent_audio_goes_to(last + 2010), Some(at(&from)));
        assert_eq!(call.session.metrics().customer.relatched, n as u64 + 1);
        last += 4000;
    }
    // Four moves made: the fifth is refused however long the silence.
    assert!(!call.customer_sends(last + 60_000, "203.0.113.5:30010"));
    assert!(call.customer_latched_onto().is_empty());
    assert_eq!(call.agent_audio_goes_to(last + 60_010), Some(at("203.0.113.5:30008")));
    assert!(call.customer_sends(last + 60_020, "203.0.113.5:30008"), "the latched one is heard");
    // New SDP (a re-INVITE) vouches for a new start: not a move, so not refused.
    let moved = RemoteMedia {
        signalling_peer: Some("203.0.113.5".parse().expect("ip")),
        ..RemoteMedia::new(at("192.168.1.10:4002"), PayloadTypes::only(Codec::Pcmu))
    };
    call.session.set_remote(Leg::Customer, moved).expect("sdp");
    assert!(call.customer_sends(last + 61_000, "203.0.113.5:30010"));
    assert_eq!(call.customer_latched_onto(), [at("203.0.113.5:30010")]);
    let m = call.session.metrics().customer;
    assert_eq!((m.relatched, m.foreign_source), (4, 8));
}

#[test]
fn the_sdp_address_takes_over_from_a_racer_on_the_peer_ip_but_nothing_moves_in_sdp_mode() {
    // sip-peer, and the SDP names the customer's real address: someone else behind the
    // same public IP sends first and latches, the customer's first packet takes over.
    let mut call = Latching::new(LatchFrom::SignallingPeer, "203.0.113.5:4000", "203.0.113.5");
    assert!(call.customer_sends(0, "203.0.113.5:5555"));
    assert!(call.customer_sends(20, "203.0.113.5:4000"));
    assert_eq!(call.customer_latched_onto(), [at("203.0.113.5:5555"), at("203.0.113.5:4000")]);
    assert!(!call.customer_sends(40, "203.0.113.5:5555"), "the racer is shut out again");
    assert_eq!(call.agent_audio_goes_to(50), Some(at("203.0.113.5:4000")));
    assert_eq!(call.session.metrics().customer.relatched, 1);

    // sdp: only the SDP's address, ever; silence moves nothing.
    let mut call = Latching::new(LatchFrom::Sdp, "203.0.113.5:4000", "203.0.113.5");
    assert!(!call.customer_sends(0, "203.0.113.5:5555"), "the peer's IP is not enough");
    assert!(call.customer_sends(20, "203.0.113.5:4000"));
    assert!(!call.customer_sends(60_000, "203.0.113.5:5555"), "not even after a silence");
    assert_eq!(call.agent_audio_goes_to(60_010), Some(at("203.0.113.5:4000")));
    let m = call.session.metrics().customer;
    assert_eq!((m.relatched, m.foreign_source), (0, 2));
}

#[test]
fn when_the_rtp_latch_moves_rtcp_latches_afresh() {
    let mut call = Latching::new(LatchFrom::SignallingPeer, "192.168.1.10:4000", "203.0.113.5");
    assert!(call.customer_sends(0, "203.0.113.5:30000"));
    assert!(call.customer_reports(10, "203.0.113.5:30001"));
    assert!(!call.customer_reports(20, "203.0.113.5:30003"), "RTCP is latched too");
    // The NAT rebinds both ports; RTP moves after the silence, and RTCP follows at once.
    assert!(call.customer_sends(2010, "203.0.113.5:30002"));
    assert!(call.customer_reports(2030, "203.0.113.5:30003"));
    assert!(!call.customer_reports(2040, "203.0.113.5:30001"), "the old RTCP port is over");
    assert_eq!(
        call.session.latched(Leg::Customer, SocketKind::Rtcp),
        Some(at("203.0.113.5:30003"))
    );
    assert_eq!(call.session.metrics().customer.relatched, 1, "one move: RTCP's was a fresh latch");
}
