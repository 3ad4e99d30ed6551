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

/// The same over real sockets: the tokio driver, on a runtime in this thread, relays a call
/// both ways without allocating once it runs.
#[test]
fn the_driver_does_not_allocate_per_packet() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use ivrpay_media::{EngineConfig, MediaEngine};
        use tokio::net::UdpSocket;
        let config = EngineConfig { port_min: 30_300, port_max: 30_309, ..EngineConfig::default() };
        let engine = MediaEngine::new(config).expect("engine");
        let call = engine
            .create_call("127.0.0.1".parse().expect("ip"), MediaProfile::default())
            .expect("call");
        let customer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let agent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let types = PayloadTypes::only(Codec::Pcmu);
        let c_addr = customer.local_addr().expect("addr");
        let a_addr = agent.local_addr().expect("addr");
        call.handle.set_remote(Leg::Customer, RemoteMedia::new(c_addr, types)).expect("sdp");
        call.handle.set_remote(Leg::Agent, RemoteMedia::new(a_addr, types)).expect("sdp");
        let to_customer_side = call.handle.local(Leg::Customer).rtp;
        let to_agent_side = call.handle.local(Leg::Agent).rtp;
        let handle = call.handle;
        let driver = tokio::spawn(call.driver.run());
        let mut up = Line::new(Phone::new(0xE3, Codec::Pcmu));
        up.speech(8000);
        let mut down = Line::new(Phone::new(0xE4, Codec::Pcmu));
        down.speech_at = 500.0;
        down.speech(8000);
        let mut buf = [0u8; 2048];
        let (mut before, mut relayed) = (0, 0);
        for (i, (u, d)) in up.schedule.iter().zip(&down.schedule).enumerate() {
            if i == 100 {
                before = allocations();
            }
            customer.send_to(&u.bytes, to_customer_side).await.expect("send");
            agent.send_to(&d.bytes, to_agent_side).await.expect("send");
            // What the relay sends back, each way (the first customer packet is held back).
            if i > 0 {
                agent.recv_from(&mut buf).await.expect("uplink");
                relayed += 1;
            }
            customer.recv_from(&mut buf).await.expect("downlink");
            relayed += 1;
        }
        let during = allocations() - before;
        println!(
            "allocations on the driver's packet path: {during} over {relayed} relayed packets"
        );
        assert_eq!(during, 0, "the driver allocated while relaying");
        drop(handle);
        driver.await.expect("driver ends");
    });
}
