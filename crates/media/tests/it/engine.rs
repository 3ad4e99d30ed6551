//! The engine: ports from the range, quarantine, exhaustion, and calls that end.

use std::time::Duration;

use ivrpay_media::{EngineConfig, Leg, MediaEngine, MediaError, MediaProfile};

fn config(port_min: u16, pairs: u16, quarantine_ms: u64) -> EngineConfig {
    EngineConfig {
        port_min,
        port_max: port_min + 2 * pairs - 1,
        quarantine: Duration::from_millis(quarantine_ms),
        ..EngineConfig::default()
    }
}

fn localhost() -> std::net::IpAddr {
    "127.0.0.1".parse().expect("ip")
}

#[tokio::test]
async fn ports_run_out_and_return_after_the_quarantine() {
    let engine = MediaEngine::new(config(30_200, 4, 300)).expect("engine");
    let profile = MediaProfile::default();
    let first = engine.create_call(localhost(), profile).expect("first call");
    let second = engine.create_call(localhost(), profile).expect("second call");
    let mut ports = Vec::new();
    for call in [&first, &second] {
        for leg in [Leg::Customer, Leg::Agent] {
            let local = call.handle.local(leg);
            assert_eq!(local.rtp.port() % 2, 0);
            assert_eq!(local.rtcp.port(), local.rtp.port() + 1);
            assert!((30_200..30_208).contains(&local.rtp.port()));
            ports.push(local.rtp.port());
        }
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4, "every leg has its own pair");
    let exhausted = engine.create_call(localhost(), profile).expect_err("no pair left");
    assert_eq!(exhausted, MediaError::PortsExhausted { min: 30_200, max: 30_207 });
    assert!(exhausted.to_string().contains("no free RTP port pair in 30200-30207"));

    let released = [first.handle.local(Leg::Customer).rtp, first.handle.local(Leg::Agent).rtp];
    tokio::spawn(first.driver.run());
    let metrics = first.handle.close().await.expect("close");
    assert_eq!(metrics, Default::default(), "no traffic, no counts");
    assert_eq!((engine.ports_in_use(), engine.ports_quarantined()), (2, 2));
    assert!(
        first.handle.set_remote(Leg::Agent, remote()).is_err(),
        "a closed call refuses commands"
    );
    // The ports are closed, but still resting.
    assert!(std::net::UdpSocket::bind(released[0]).is_ok());
    assert!(engine.create_call(localhost(), profile).is_err(), "still in quarantine");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let third = engine.create_call(localhost(), profile).expect("ports are back");
    let mut got = [third.handle.local(Leg::Customer).rtp, third.handle.local(Leg::Agent).rtp];
    got.sort();
    let mut want = released;
    want.sort();
    assert_eq!(got, want);
    let m = engine.metrics();
    assert_eq!((m.calls_created, m.calls_closed, m.active_calls, m.setup_failures), (3, 1, 2, 2));
    drop(second);
}

fn remote() -> ivrpay_media::RemoteMedia {
    ivrpay_media::RemoteMedia::new(
        "127.0.0.1:9".parse().expect("addr"),
        ivrpay_media::PayloadTypes::only(ivrpay_media::Codec::Pcmu),
    )
}

#[tokio::test]
async fn a_port_someone_else_holds_is_skipped() {
    let squatter = std::net::UdpSocket::bind("127.0.0.1:30221").expect("bind");
    // Three pairs: the call gets the two free ones, whichever order they are tried in.
    let engine = MediaEngine::new(config(30_220, 3, 1000)).expect("engine");
    let call = engine.create_call(localhost(), MediaProfile::default()).expect("call");
    for leg in [Leg::Customer, Leg::Agent] {
        assert_ne!(call.handle.local(leg).rtp.port(), 30_220, "the pair with 30221 is taken");
    }
    // The next call can only try the squatted pair (if the first did not): it rests.
    let refused = engine.create_call(localhost(), MediaProfile::default()).expect_err("none left");
    assert_eq!(refused, MediaError::PortsExhausted { min: 30_220, max: 30_225 });
    assert_eq!(engine.ports_quarantined(), 1, "the unusable pair rests");
    drop(squatter);
}

#[tokio::test]
async fn dropping_every_handle_ends_the_call_and_frees_its_ports() {
    let engine = MediaEngine::new(config(30_240, 2, 0)).expect("engine");
    let call = engine.create_call(localhost(), MediaProfile::default()).expect("call");
    let task = tokio::spawn(call.driver.run());
    let copy = call.handle.clone();
    drop(call.handle);
    assert!(!task.is_finished());
    drop(copy);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("driver ends")
        .expect("no panic");
    assert_eq!(engine.ports_in_use(), 0);
    assert_eq!(engine.metrics().active_calls, 0);
    engine.create_call(localhost(), MediaProfile::default()).expect("the ports can be reused");
}

#[tokio::test]
async fn a_driver_that_never_ran_still_gives_its_ports_back() {
    let engine = MediaEngine::new(config(30_250, 2, 0)).expect("engine");
    let call = engine.create_call(localhost(), MediaProfile::default()).expect("call");
    drop(call);
    assert_eq!(engine.ports_in_use(), 0);
    engine.create_call(localhost(), MediaProfile::default()).expect("the ports can be reused");
}

#[test]
fn invalid_settings_are_refused() {
    assert_eq!(
        MediaEngine::new(EngineConfig { port_min: 5, port_max: 5, ..EngineConfig::default() })
            .expect_err("no pair"),
        MediaError::InvalidPortRange { min: 5, max: 5 }
    );
    let profile = MediaProfile { lookahead_ms: 80, ..MediaProfile::default() };
    assert_eq!(
        ivrpay_media::Session::new(profile, 1).expect_err("too long"),
        MediaError::InvalidLookahead { ms: 80 }
    );
    let mut session = ivrpay_media::Session::new(MediaProfile::default(), 1).expect("session");
    let mut bad = remote();
    bad.ptime_ms = 25;
    assert_eq!(session.set_remote(Leg::Agent, bad), Err(MediaError::UnsupportedPtime { ms: 25 }));
    let mut bad = remote();
    bad.payload_types.telephone_event = Some(0);
    assert_eq!(
        session.set_remote(Leg::Agent, bad),
        Err(MediaError::DuplicatePayloadType { payload_type: 0 })
    );
    let mut bad = remote();
    bad.payload_types.send = ivrpay_media::Codec::Pcma;
    assert_eq!(session.set_remote(Leg::Agent, bad), Err(MediaError::SendCodecNotNegotiated));
}
