//! ivrpay's relay under load, as a process of its own so that its CPU time can be measured
//! like the peer's: N calls on one `MediaEngine`, every leg masked, run by a tokio runtime
//! with one worker per core.
//!
//! usage: media-relay --calls N --customer IP:PORT --agent IP:PORT [--ports MIN-MAX]
//!                    [--workers W] [--ports-file FILE]
//!
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
    CallHandle, Codec, EngineConfig, Leg, MediaEngine, MediaEvent, MediaProfile, PayloadTypes,
    RemoteMedia,
};

struct Args {
    calls: usize,
    customer: SocketAddr,
    agent: SocketAddr,
    ports: (u16, u16),
    workers: usize,
    /// One current-thread runtime per worker, calls spread over them, instead of one
    /// work-stealing runtime.
    sharded: bool,
    /// With `--sharded`: instead of waking for every datagram, each runtime thread sleeps
    /// this long, then handles everything that arrived meanwhile (0: wake per datagram).
    tick_us: u64,
    ports_file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut calls = None;
    let (mut customer, mut agent) = (None, None);
    let mut ports = (20_000u16, 29_999u16);
    let mut workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut ports_file = None;
    let mut sharded = false;
    let mut tick_us = 0;
    while let Some(flag) = args.next() {
        if flag == "--sharded" {
            sharded = true;
            continue;
        }
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--calls" => calls = Some(value()?.parse().map_err(|e| format!("--calls: {e}"))?),
            "--customer" => {
                customer = Some(value()?.parse().map_err(|e| format!("--customer: {e}"))?)
            }
            "--agent" => agent = Some(value()?.parse().map_err(|e| format!("--agent: {e}"))?),
            "--workers" => workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--ports-file" => ports_file = Some(value()?),
            "--tick-us" => {
                tick_us = value()?.parse().map_err(|e| format!("--tick-us: {e}"))?;
                sharded = true;
            }
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
        workers,
        sharded,
        tick_us,
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

/// The calls one runtime drives, and what it learned setting them up.
struct Shard {
    lines: Vec<(usize, String)>,
    handles: Vec<CallHandle>,
}

/// Creates calls `indices` on the current runtime: remotes set, drivers and event readers
/// spawned.
fn start_calls(
    engine: &MediaEngine,
    args: &Args,
    indices: impl Iterator<Item = usize>,
    digits: &Arc<AtomicU64>,
) -> Result<Shard, String> {
    let customer =
        RemoteMedia::new(args.customer, PayloadTypes::only(Codec::Pcmu).with_telephone_event(101));
    let agent = RemoteMedia::new(args.agent, PayloadTypes::only(Codec::Pcmu));
    let mut shard = Shard { lines: Vec::new(), handles: Vec::new() };
    for i in indices {
        let ip = args.customer.ip();
        let mut call =
            engine.create_call(ip, MediaProfile::default()).map_err(|e| e.to_string())?;
        call.handle.set_remote(Leg::Customer, customer).map_err(|e| e.to_string())?;
        call.handle.set_remote(Leg::Agent, agent).map_err(|e| e.to_string())?;
        tokio::spawn(call.driver.run());
        let digits = Arc::clone(digits);
        tokio::spawn(async move {
            while let Some(event) = call.events.recv().await {
                if matches!(event, MediaEvent::Digit(_)) {
                    digits.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (c, a) = (call.handle.local(Leg::Customer).rtp, call.handle.local(Leg::Agent).rtp);
        shard.lines.push((i, format!("{} {}", c.port(), a.port())));
        shard.handles.push(call.handle);
    }
    Ok(shard)
}

async fn close_all(handles: &[CallHandle]) {
    for handle in handles {
        let _ = handle.close().await;
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
    let digits = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    if args.sharded {
        // One single-threaded runtime per worker, each with its own share of the calls.
        let args = Arc::new(args);
        for w in 0..args.workers {
            let (engine, args, digits) = (engine.clone(), Arc::clone(&args), Arc::clone(&digits));
            let (ready, mut stop) = (ready_tx.clone(), stop_rx.clone());
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let indices = (w..args.calls).step_by(args.workers);
                let handles =
                    match rt.block_on(async { start_calls(&engine, &args, indices, &digits) }) {
                        Ok(shard) => {
                            let _ = ready.send(Ok(shard.lines));
                            shard.handles
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                if args.tick_us == 0 {
                    rt.block_on(async {
                        let _ = stop.wait_for(|s| *s).await;
                        close_all(&handles).await;
                    });
                    return;
                }
                // Coalesced wake-ups: sleep a tick, then let the runtime poll its sockets
                // once (without blocking) and run every call that has something to do.
                let tick = Duration::from_micros(args.tick_us);
                while !*stop.borrow() {
                    std::thread::sleep(tick);
                    rt.block_on(async {
                        tokio::task::yield_now().await;
                        tokio::task::yield_now().await;
                    });
                }
                rt.block_on(close_all(&handles));
            }));
        }
        drop(ready_tx);
        finish(&engine, &digits, args.calls, args.ports_file.as_deref(), ready_rx, stop_tx, threads)
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let shard = rt.block_on(async { start_calls(&engine, &args, 0..args.calls, &digits) });
        let handles = match shard {
            Ok(shard) => {
                let _ = ready_tx.send(Ok(shard.lines));
                shard.handles
            }
            Err(e) => return Err(e),
        };
        drop(ready_tx);
        let mut stop = stop_rx;
        threads.push(std::thread::spawn(move || {
            rt.block_on(async {
                let _ = stop.wait_for(|s| *s).await;
                close_all(&handles).await;
            });
        }));
        finish(&engine, &digits, args.calls, args.ports_file.as_deref(), ready_rx, stop_tx, threads)
    }
}

/// Publishes the ports, waits for stdin to close, stops the calls and prints the totals.
fn finish(
    engine: &MediaEngine,
    digits: &AtomicU64,
    calls: usize,
    ports_file: Option<&str>,
    ready: std::sync::mpsc::Receiver<Result<Vec<(usize, String)>, String>>,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
) -> Result<(), String> {
    let mut lines = Vec::with_capacity(calls);
    for _ in 0..threads.len() {
        let shard = ready.recv().map_err(|_| "a runtime thread ended early".to_string())?;
        lines.extend(shard?);
    }
    lines.sort_unstable();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    match ports_file {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{path}: {e}"))?,
        None => print!("{text}"),
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    for _ in std::io::stdin().lock().lines() {}
    let _ = stop.send(true);
    for t in threads {
        let _ = t.join();
    }
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
    Ok(())
}
