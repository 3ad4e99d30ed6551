//! ivrpay's relay under load, as a process of its own so that its CPU time can be measured
//! like the peer's: N calls on one `MediaEngine`, every leg masked, run on a `MediaRuntime`
//! as `ivrpay serve` runs them (one thread per core, coalesced wake-ups when busy).
//!
//! usage: media-relay --calls N --customer IP:PORT --agent IP:PORT [--ports MIN-MAX]
//!                    [--workers W] [--tick-us T] [--coalesce-from C] [--ports-file FILE]
//!
//! `--workers`, `--tick-us` and `--coalesce-from` set the runtime (default: its defaults, as
//! in `ivrpay serve`; `--tick-us 0` wakes for every datagram).
//! Every call's customer leg points at `--customer` (PCMU + telephone-event 101) and its agent
//! leg at `--agent` (PCMU). The relay's local RTP ports go to FILE (or stdout), one line per
//! call: `CUSTOMER_SIDE_PORT AGENT_SIDE_PORT`, then `ready` on stdout. It runs until stdin
//! closes, then closes every call and prints its totals as one JSON line.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ivrpay_media::{
    Codec, EngineConfig, Leg, MediaEngine, MediaEvent, MediaProfile, MediaRuntime, PayloadTypes,
    RemoteMedia, RuntimeConfig,
};

struct Args {
    calls: usize,
    customer: SocketAddr,
    agent: SocketAddr,
    ports: (u16, u16),
    runtime: RuntimeConfig,
    ports_file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut calls = None;
    let (mut customer, mut agent) = (None, None);
    let mut ports = (20_000u16, 29_999u16);
    let mut runtime = RuntimeConfig::default();
    let mut ports_file = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--calls" => calls = Some(value()?.parse().map_err(|e| format!("--calls: {e}"))?),
            "--customer" => {
                customer = Some(value()?.parse().map_err(|e| format!("--customer: {e}"))?)
            }
            "--agent" => agent = Some(value()?.parse().map_err(|e| format!("--agent: {e}"))?),
            "--workers" => {
                runtime.threads = value()?.parse().map_err(|e| format!("--workers: {e}"))?
            }
            "--tick-us" => {
                let us = value()?.parse().map_err(|e| format!("--tick-us: {e}"))?;
                runtime.tick = Duration::from_micros(us);
            }
            "--coalesce-from" => {
                runtime.coalesce_from =
                    value()?.parse().map_err(|e| format!("--coalesce-from: {e}"))?
            }
            "--ports-file" => ports_file = Some(value()?),
            "--ports" => {
                let v = value()?;
                let (a, b) = v.split_once('-').ok_or("--ports MIN-MAX")?;
                ports = (
                    a.parse().map_err(|e| format!("--ports: {e}"))?,
                    b.parse().map_err(|e| format!("--ports: {e}"))?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        calls: calls.ok_or("--calls is required")?,
        customer: customer.ok_or("--customer is required")?,
        agent: agent.ok_or("--agent is required")?,
        ports,
        runtime,
        ports_file,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("media-relay: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("media-relay: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let config = EngineConfig {
        port_min: args.ports.0,
        port_max: args.ports.1,
        quarantine: Duration::ZERO,
        event_capacity: 1024,
        ..EngineConfig::default()
    };
    let engine = MediaEngine::new(config).map_err(|e| e.to_string())?;
    let threads = MediaRuntime::start(args.runtime).map_err(|e| e.to_string())?;
    // The event readers and the closing run here, as the SIP side does in `ivrpay serve`.
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let digits = Arc::new(AtomicU64::new(0));
    let customer =
        RemoteMedia::new(args.customer, PayloadTypes::only(Codec::Pcmu).with_telephone_event(101));
    let agent = RemoteMedia::new(args.agent, PayloadTypes::only(Codec::Pcmu));
    let mut lines = String::new();
    let mut handles = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let mut call = threads
            .create_call(&engine, args.customer.ip(), MediaProfile::default())
            .map_err(|e| e.to_string())?;
        call.handle.set_remote(Leg::Customer, customer).map_err(|e| e.to_string())?;
        call.handle.set_remote(Leg::Agent, agent).map_err(|e| e.to_string())?;
        let digits = Arc::clone(&digits);
        control.spawn(async move {
            while let Some(event) = call.events.recv().await {
                if matches!(event, MediaEvent::Digit(_)) {
                    digits.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (c, a) = (call.handle.local(Leg::Customer).rtp, call.handle.local(Leg::Agent).rtp);
        lines.push_str(&format!("{} {}\n", c.port(), a.port()));
        handles.push(call.handle);
    }
    match args.ports_file.as_deref() {
        Some(path) => std::fs::write(path, &lines).map_err(|e| format!("{path}: {e}"))?,
        None => print!("{lines}"),
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    for _ in std::io::stdin().lock().lines() {}
    control.block_on(async {
        for handle in &handles {
            let _ = handle.close().await;
        }
    });
    drop(threads);
    print_totals(&engine, &digits, args.calls);
    Ok(())
}

/// The relay's totals, as one JSON line.
fn print_totals(engine: &MediaEngine, digits: &AtomicU64, calls: usize) {
    let m = engine.metrics().totals;
    let q = |p| m.latency.quantile_micros(p).unwrap_or(0);
    println!(
        "{{\"calls\":{calls},\"customer_in\":{},\"agent_out\":{},\"agent_in\":{},\"customer_out\":{},\
         \"masked_frames\":{},\"masked_samples\":{},\"digit_events\":{},\"lost\":{},\"late\":{},\
         \"send_errors\":{},\"driver_latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{}}}}}",
        m.customer.rtp_packets_in,
        m.agent.rtp_packets_out,
        m.agent.rtp_packets_in,
        m.customer.rtp_packets_out,
        m.masking.masked_frames,
        m.masking.masked_samples,
        digits.load(Ordering::Relaxed),
        m.customer.lost + m.agent.lost,
        m.customer.late + m.agent.late,
        m.customer.send_errors + m.agent.send_errors,
        q(0.5),
        q(0.99),
        q(0.999),
    );
}
