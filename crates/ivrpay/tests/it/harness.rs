//! Running the real `ivrpay serve` binary and real SIPp processes on loopback, each bounded
//! in time and killed when its guard drops (also when a test panics).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The SIPp scenarios of `benches/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/sipp").join(format!("{name}.xml"))
}

/// A scratch directory for one test (fresh every run).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ivrpay-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Fails with the Debian package to install when a tool is missing: a test that skipped its
/// peer would prove nothing.
pub fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: install the Debian package {package} (scripts/test.sh does)"
    );
}

/// Ports a test binds itself or hands to a peer (SIP ports, SIPp's media ports, agent media).
/// Below the relay region and below the kernel's ephemeral range (32768 and up), so neither
/// a relay that binds its range lazily nor a socket bound to port 0 can take one after it
/// was checked free.
const POINT_PORTS: std::ops::Range<u32> = 10_000..20_000;
/// The RTP ranges given to `ivrpay serve`, one block per instance.
const RELAY_PORTS: std::ops::Range<u32> = 20_000..32_000;
/// One instance's RTP range: the busiest test (100 calls, about 15 at once, four ports each,
/// plus quarantine) stays well inside it.
const RELAY_BLOCK: u16 = 600;

/// A block of `count` free local ports (UDP, and TCP for the first) for a test or a peer.
pub fn free_ports(count: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    free_block(POINT_PORTS, count, &NEXT)
}

/// A free block for one `ivrpay serve`'s `--rtp-ports`.
fn free_relay_range() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    free_block(RELAY_PORTS, RELAY_BLOCK, &NEXT)
}

/// The start moves with the process id and a counter so that parallel tests (and parallel
/// test binaries) rarely meet; every port is checked free before it is handed out.
fn free_block(region: std::ops::Range<u32>, count: u16, next: &AtomicU32) -> u16 {
    let span = region.end - region.start - u32::from(count) - 2;
    let base = (std::process::id() * 997) % span;
    for _ in 0..2000 {
        let offset = next.fetch_add(u32::from(count) + 2, Ordering::Relaxed);
        let start = (region.start + ((base + offset) % span)) & !1;
        let Ok(start) = u16::try_from(start) else { continue };
        let udp_free =
            (start..start + count).all(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok());
        if udp_free && TcpListener::bind(("127.0.0.1", start)).is_ok() {
            return start;
        }
    }
    panic!("no block of {count} free local ports in {region:?}");
}

/// A child process that is killed (and reaped) when the guard drops.
#[derive(Debug)]
pub struct Guard {
    pub name: String,
    child: Option<Child>,
}

impl Guard {
    pub fn new(name: &str, child: Child) -> Guard {
        Guard { name: name.to_owned(), child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits for the process to exit, at most `limit`; kills it and fails the test after that.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return status.code().unwrap_or(-1);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    panic!("{} did not finish within {limit:?}", self.name);
                }
                Err(e) => panic!("{}: {e}", self.name),
            }
        }
    }

    /// Sends SIGTERM (the way an init system stops the service).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.id());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The log of a running ivrpay, collected by a reader thread.
#[derive(Debug, Default)]
pub struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl Log {
    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut lines = self.lines.lock().expect("log lock");
        loop {
            if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no log line with {needle:?} within {limit:?}:\n{}",
                lines.join("\n")
            );
            lines = self.grew.wait_timeout(lines, left).expect("log lock").0;
        }
    }

    pub fn text(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }
}

/// Drops ANSI colour sequences (the log is coloured when the subscriber thinks it may be).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Settings of one test's ivrpay.
#[derive(Clone, Debug)]
pub struct ProfileSpec {
    /// Contact-centre targets, in failover order.
    pub targets: Vec<String>,
    pub failover_timeout_ms: u64,
    pub latching: bool,
}

impl ProfileSpec {
    pub fn to(agent: SocketAddr) -> ProfileSpec {
        ProfileSpec {
            targets: vec![format!("sip:agents@{agent}")],
            failover_timeout_ms: 2000,
            latching: true,
        }
    }

    fn toml(&self) -> String {
        let targets: Vec<String> = self.targets.iter().map(|t| format!("{t:?}")).collect();
        format!(
            r#"# Written by the integration test.
name = "default"
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
allowed_sources = ["127.0.0.0/8"]

[media]
codecs = ["PCMU", "PCMA"]
telephone_event = true
latching = {latching}

[mask]
mode = "tone"
lookahead_ms = 20

[routing]
targets = [{targets}]
failover_timeout_ms = {failover}
ring_timeout_s = 30

[headers]
pass = ["X-Customer-*"]
strip = []
agent = "X-Agent-Id"

[limits]
max_calls = 1000
"#,
            latching = self.latching,
            targets = targets.join(", "),
            failover = self.failover_timeout_ms,
        )
    }
}

/// A running `ivrpay serve`, its own data dir, profiles dir, ports and log.
#[derive(Debug)]
pub struct Ivrpay {
    pub process: Guard,
    pub log: Arc<Log>,
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub http: SocketAddr,
    /// The relay's RTP/RTCP ports (`--rtp-ports`).
    pub rtp_ports: std::ops::RangeInclusive<u16>,
}

impl Ivrpay {
    pub fn start(dir: &Path, profile: &ProfileSpec, shutdown_grace_s: u32) -> Ivrpay {
        Ivrpay::start_with_env(dir, profile, shutdown_grace_s, &[])
    }

    /// As [`Ivrpay::start`], with extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        profile: &ProfileSpec,
        shutdown_grace_s: u32,
        env: &[(&str, &str)],
    ) -> Ivrpay {
        let profiles = dir.join("profiles");
        std::fs::create_dir_all(&profiles).expect("profiles dir");
        std::fs::write(profiles.join("default.toml"), profile.toml()).expect("profile");
        let rtp = free_relay_range();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ivrpay"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--profiles")
            .arg(&profiles)
            .args(["--http-listen", "127.0.0.1:0"])
            .args(["--rtp-ports", &format!("{rtp}-{}", rtp + RELAY_BLOCK - 1)])
            .args(["--shutdown-grace", &shutdown_grace_s.to_string()])
            .env("NO_COLOR", "1")
            .env("IVRPAY_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ivrpay starts");
        let log = Arc::new(Log::default());
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    log.lines.lock().expect("log lock").push(strip_ansi(&line));
                    log.grew.notify_all();
                }
            });
        }
        let process = Guard::new("ivrpay", child);
        log.wait_for("ready", Duration::from_secs(30));
        let addr = |prefix: &str| -> SocketAddr {
            let line = log.wait_for(prefix, Duration::from_secs(1));
            let rest = &line[line.find(prefix).expect("found") + prefix.len()..];
            rest.split_whitespace()
                .next()
                .unwrap_or("")
                .parse()
                .unwrap_or_else(|_| panic!("cannot read the address in {line:?}"))
        };
        Ivrpay {
            sip_udp: addr("SIP listening on udp:"),
            sip_tcp: addr("SIP listening on tcp:"),
            http: addr("HTTP listening on http://"),
            rtp_ports: rtp..=rtp + RELAY_BLOCK - 1,
            process,
            log,
        }
    }

    /// An HTTP GET; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_with_header(path, "")
    }

    /// An HTTP GET with an API key (`Authorization: Bearer`).
    pub fn get_with_key(&self, path: &str, key: &str) -> (u16, String) {
        self.get_with_header(path, &format!("Authorization: Bearer {key}\r\n"))
    }

    fn get_with_header(&self, path: &str, header: &str) -> (u16, String) {
        let mut stream = TcpStream::connect_timeout(&self.http, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("HTTP connect {}: {e}", self.http));
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{header}Connection: close\r\n\r\n",
            self.http
        )
        .expect("HTTP request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("HTTP response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// One Prometheus value from /metrics (`name` without the `ivrpay_` prefix).
    pub fn metric(&self, name: &str) -> u64 {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        let full = format!("ivrpay_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&full))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {full} in /metrics:\n{body}"))
    }

    /// Waits until a metric reaches `value`.
    pub fn wait_metric(&self, name: &str, value: u64, limit: Duration) {
        self.wait_metric_until(name, &format!("= {value}"), |v| v == value, limit);
    }

    /// Waits until a metric is at least `value`.
    pub fn wait_metric_at_least(&self, name: &str, value: u64, limit: Duration) {
        self.wait_metric_until(name, &format!(">= {value}"), |v| v >= value, limit);
    }

    fn wait_metric_until(&self, name: &str, what: &str, ok: impl Fn(u64) -> bool, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.metric(name);
            if ok(now) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} is {now}, expected {what} within {limit:?}\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What a finished SIPp run reports.
#[derive(Debug)]
pub struct SippResult {
    pub code: i32,
    pub successful: u64,
    pub failed: u64,
    /// The average of `Response Time 1` (INVITE to the response marked `rtd`), in ms.
    pub response_time_ms: f64,
    /// stdout and the error file, for failure messages.
    pub output: String,
}

/// A SIPp process.
#[derive(Debug)]
pub struct Sipp {
    guard: Guard,
    stdout: PathBuf,
    errors: PathBuf,
    stats: PathBuf,
    pub port: u16,
}

/// How to start SIPp: a scenario from `benches/sipp/`, in `dir`.
#[derive(Debug)]
pub struct SippSpec<'a> {
    pub name: &'a str,
    pub scenario: &'a str,
    pub dir: &'a Path,
    /// The remote address (a UAC's target); `None` for a UAS.
    pub remote: Option<SocketAddr>,
    pub calls: u32,
    pub rate: u32,
    /// Hold time for `<pause/>` in ms.
    pub hold_ms: u32,
    pub transport_tcp: bool,
    /// SIPp's media port (`-mp`); a free one when `None`.
    pub media_port: Option<u16>,
    pub extra: Vec<String>,
}

impl<'a> SippSpec<'a> {
    pub fn uas(name: &'a str, scenario: &'a str, dir: &'a Path, calls: u32) -> SippSpec<'a> {
        SippSpec {
            name,
            scenario,
            dir,
            remote: None,
            calls,
            rate: 10,
            hold_ms: 0,
            transport_tcp: false,
            media_port: None,
            extra: Vec::new(),
        }
    }

    pub fn uac(
        name: &'a str,
        scenario: &'a str,
        dir: &'a Path,
        remote: SocketAddr,
        calls: u32,
    ) -> SippSpec<'a> {
        SippSpec { remote: Some(remote), ..SippSpec::uas(name, scenario, dir, calls) }
    }

    /// `-key NAME VALUE` (read in the scenario as `[NAME]`).
    pub fn key(mut self, name: &str, value: impl ToString) -> Self {
        self.extra.extend(["-key".to_owned(), name.to_owned(), value.to_string()]);
        self
    }

    pub fn start(self) -> Sipp {
        require_tool("sipp", "sip-tester");
        let port = free_ports(1);
        let media_port = self.media_port.unwrap_or_else(|| free_ports(4));
        let stdout = self.dir.join(format!("{}.out", self.name));
        let errors = self.dir.join(format!("{}.errors", self.name));
        let stats = self.dir.join(format!("{}.csv", self.name));
        let mut cmd = Command::new("sipp");
        if let Some(remote) = self.remote {
            cmd.arg(remote.to_string());
        }
        cmd.arg("-sf").arg(scenario(self.scenario));
        cmd.args(["-i", "127.0.0.1", "-mi", "127.0.0.1"]);
        cmd.args(["-p", &port.to_string(), "-mp", &media_port.to_string()]);
        cmd.args(["-m", &self.calls.to_string()]);
        cmd.args(["-r", &self.rate.to_string(), "-d", &self.hold_ms.to_string()]);
        if self.transport_tcp {
            cmd.args(["-t", "t1"]);
        }
        // Bounded: every expected message within 10 s, the whole run within 2 minutes.
        cmd.args(["-recv_timeout", "10000", "-timeout", "120s", "-timeout_error"]);
        cmd.args(["-nostdin", "-trace_err", "-error_file"]).arg(&errors);
        cmd.args(["-trace_stat", "-fd", "1", "-stf"]).arg(&stats);
        cmd.args(&self.extra);
        cmd.current_dir(self.dir);
        let out = std::fs::File::create(&stdout).expect("sipp stdout file");
        cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("file")).stderr(out);
        let child = cmd.spawn().expect("sipp starts");
        Sipp {
            guard: Guard::new(&format!("sipp {}", self.name), child),
            stdout,
            errors,
            stats,
            port,
        }
    }
}

impl Sipp {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for SIPp to finish (at most `limit`) and reads its final counts.
    pub fn finish(mut self, limit: Duration) -> SippResult {
        let code = self.guard.wait(limit);
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let errors = std::fs::read_to_string(&self.errors).unwrap_or_default();
        // SIPp's statistics file: a header row, then cumulative (C) and periodic (P) columns.
        let stats = std::fs::read_to_string(&self.stats).unwrap_or_default();
        let mut rows = stats.lines();
        let header: Vec<&str> = rows.next().unwrap_or("").split(';').collect();
        let last: Vec<&str> = rows.last().unwrap_or("").split(';').collect();
        let column = |name: &str| {
            header.iter().position(|h| *h == name).and_then(|i| last.get(i)).copied().unwrap_or("")
        };
        let count = |name: &str| column(name).trim().parse().unwrap_or(0);
        // HH:MM:SS:micros
        let fields: Vec<f64> =
            column("ResponseTime1(C)").split(':').filter_map(|f| f.parse().ok()).collect();
        let response_time_ms = match fields[..] {
            [h, m, s, us] => ((h * 60.0 + m) * 60.0 + s) * 1000.0 + us / 1000.0,
            _ => 0.0,
        };
        SippResult {
            code,
            response_time_ms,
            successful: count("SuccessfulCall(C)"),
            failed: count("FailedCall(C)"),
            output: format!("{stdout}\n--- errors ---\n{}", tail(&errors, 60)),
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl SippResult {
    /// Every call passed: exit status 0, `calls` successful, none failed.
    pub fn assert_all(&self, who: &str, calls: u64, ivrpay: &Ivrpay) {
        assert!(
            self.code == 0 && self.successful == calls && self.failed == 0,
            "{who}: exit {} with {} successful and {} failed calls, expected {calls} successful\n{}\n--- ivrpay log ---\n{}",
            self.code,
            self.successful,
            self.failed,
            self.output,
            tail(&ivrpay.log.text(), 40)
        );
    }
}
