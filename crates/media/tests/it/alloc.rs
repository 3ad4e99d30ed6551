//! The packet path does not allocate: a counting allocator watches this thread while a
//! session handles packets of every kind (after a warm-up that lets one-time buffers grow).

use std::time::{Duration, Instant};

use ivrpay_testkit::alloc::allocations;

use ivrpay_media::{Codec, Leg, MediaProfile, PayloadTypes, RemoteMedia, Session, SocketKind};

use crate::support::{Line, Phone, TE};

#[test]
fn the_packet_path_does_not_allocate() {
    let mut line = Line::new(Phone::new(0xE1, Codec::Pcmu));
    for round in 0..4 {
        line.speech(300);
        line.key('1', 100);
        line.event_key('2', 100);
        line.both_key('3', 100);
        line.speech(200);
        if round == 2 {
            line.quiet(200);
        }
    }
    let mut agent = Line::new(Phone::new(0xE2, Codec::Pcma));
    agent.speech_at = 400.0;
    agent.speech(6000);
    let customer_addr = "127.0.0.1:5000".parse().expect("addr");
    let agent_addr = "127.0.0.1:6000".parse().expect("addr");
    let mut session = Session::new(MediaProfile::default(), 7).expect("session");
    let types = PayloadTypes::only(Codec::Pcmu).with_telephone_event(TE);
    session.set_remote(Leg::Customer, RemoteMedia::new(customer_addr, types)).expect("sdp");
    session
        .set_remote(Leg::Agent, RemoteMedia::new(agent_addr, PayloadTypes::only(Codec::Pcma)))
        .expect("sdp");
    let mut schedule: Vec<_> = line
        .schedule
        .iter()
        .enumerate()
        // Some loss and some reordering too.
        .filter(|(i, _)| i % 23 != 5)
        .map(|(i, t)| {
            let late = if i % 17 == 3 { Duration::from_millis(25) } else { Duration::ZERO };
            (t.at + late, Leg::Customer, customer_addr, t.bytes.clone())
        })
        .chain(agent.schedule.iter().map(|t| (t.at, Leg::Agent, agent_addr, t.bytes.clone())))
        .collect();
    schedule.sort_by_key(|e| e.0);
    #[allow(clippy::disallowed_methods, reason = "the simulated clock needs an origin")]
    let t0 = Instant::now();
    let warm_up = schedule.len() / 3;
    let (mut before, mut sent) = (0, 0);
    for (i, (at, leg, from, bytes)) in schedule.iter().enumerate() {
        if i == warm_up {
            before = allocations();
        }
        while let Some(due) = session.poll_timeout().filter(|&d| d <= t0 + *at) {
            session.handle_timeout(due);
            while session.poll_transmit().is_some() {}
        }
        session.handle_datagram(t0 + *at, *leg, SocketKind::Rtp, *from, bytes);
        while let Some(t) = session.poll_transmit() {
            sent += t.payload.len();
        }
        while session.poll_event().is_some() {}
    }
    let during = allocations() - before;
    // The control: the counter does see this thread's allocations.
    let control = allocations();
    std::hint::black_box(vec![0u8; 64]);
    assert!(allocations() > control, "the counting allocator is not installed");
    let m = session.metrics();
    println!(
        "allocations on the packet path: {during} over {} datagrams ({} digits, {} masked frames, {sent} bytes out)",
        schedule.len() - warm_up,
        m.masking.digits_in_band + m.masking.digits_rfc4733,
        m.masking.masked_frames,
    );
    assert!(m.masking.digits_in_band >= 4 && m.masking.digits_rfc4733 >= 4, "{m:?}");
    assert_eq!(during, 0, "the packet path allocated");
}
