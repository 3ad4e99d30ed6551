//! `ivrpay serve`'s settings: embedded defaults, overridden by flags and `IVRPAY_*`
//! environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use ivrpay_sip::profile::{Listen, Mode, Profile, ProfileError, is_routable};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// SIP listen address of the default inbound profile (UDP and TCP).
    #[arg(long, env = "IVRPAY_SIP_LISTEN", value_name = "ADDR:PORT")]
    sip_listen: Option<SocketAddr>,
    /// HTTP listen address (health, metrics, API).
    #[arg(
        long,
        env = "IVRPAY_HTTP_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:8080"
    )]
    http_listen: SocketAddr,
    /// Where ivrpay keeps its data (SQLite database, keys).
    #[arg(long, env = "IVRPAY_DATA_DIR", value_name = "DIR", default_value = "ivrpay-data")]
    data_dir: PathBuf,
    /// A directory of SIP profiles (*.toml); default: the built-in sip-profiles/.
    #[arg(long, env = "IVRPAY_PROFILES", value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// The contact-centre target of the default inbound profile.
    #[arg(long, env = "IVRPAY_ROUTE_TO", value_name = "SIP-URI")]
    route_to: Option<String>,
    /// Local UDP ports for RTP/RTCP pairs.
    #[arg(long, env = "IVRPAY_RTP_PORTS", value_name = "LOW-HIGH", default_value = "20000-29999")]
    rtp_ports: String,
    /// Seconds a released RTP port pair rests before another call gets it (late packets of
    /// the old call must not reach the new one). Load tests lower it, as they run rtpengine
    /// with --delete-delay=0.
    #[arg(long, env = "IVRPAY_RTP_QUARANTINE", value_name = "SECONDS", default_value_t = 10)]
    rtp_quarantine: u64,
    /// Microseconds a busy relay thread sleeps between two rounds of datagrams (one wake-up
    /// for many calls instead of one per datagram: less CPU, at most this much more delay);
    /// 0 wakes for every datagram.
    #[arg(long, env = "IVRPAY_MEDIA_TICK_US", value_name = "MICROSECONDS", default_value_t = 500)]
    media_tick_us: u64,
    /// A TOML configuration file; its `[sync]` section configures the downstream sync
    /// (sinks, retry schedule). Without it, embedded defaults.
    #[arg(long, env = "IVRPAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// PostgreSQL URL; without it, the SQLite file under the data directory.
    #[arg(long, env = "IVRPAY_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// This node's name, recorded on its calls: when it restarts it ends the calls it left
    /// in progress, and only those (default: the host name).
    #[arg(long, env = "IVRPAY_NODE_ID", value_name = "NAME")]
    node_id: Option<String>,
    /// Seconds between heartbeats on an idle feed connection (WebSocket and SSE).
    #[arg(long, env = "IVRPAY_FEED_HEARTBEAT", value_name = "SECONDS", default_value_t = 15)]
    feed_heartbeat: u64,
    /// Seconds a graceful shutdown lets calls finish before ending them.
    #[arg(long, env = "IVRPAY_SHUTDOWN_GRACE", value_name = "SECONDS", default_value_t = 30)]
    shutdown_grace: u64,
}

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub(crate) struct ServeConfig {
    pub(crate) profiles: Vec<Profile>,
    pub(crate) http_listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) rtp_ports: (u16, u16),
    pub(crate) rtp_quarantine: std::time::Duration,
    pub(crate) media_tick: std::time::Duration,
    pub(crate) shutdown_grace: std::time::Duration,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) database_url: Option<String>,
    pub(crate) node: String,
    pub(crate) feed_heartbeat: std::time::Duration,
}

/// A setting that cannot be used.
#[derive(Debug)]
pub(crate) enum ConfigError {
    Profile(ProfileError),
    RtpPorts(String),
    RouteTo(String),
    NoDefaultProfile,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Profile(e) => write!(f, "profile {e}"),
            ConfigError::RtpPorts(s) => {
                write!(f, "--rtp-ports {s:?}: expected LOW-HIGH, even LOW, 1024 <= LOW < HIGH")
            }
            ConfigError::RouteTo(s) => {
                write!(f, "--route-to {s:?}: expected a sip: URI on an IP address")
            }
            ConfigError::NoDefaultProfile => f.write_str(
                "--sip-listen and --route-to need a profile named \"default\" to apply to",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ServeArgs {
    pub(crate) fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let mut profiles = match &self.profiles {
            Some(dir) => Profile::load_dir(dir).map_err(ConfigError::Profile)?,
            None => Profile::embedded(),
        };
        if self.sip_listen.is_some() || self.route_to.is_some() {
            let default = profiles
                .iter_mut()
                .find(|p| p.name == "default")
                .ok_or(ConfigError::NoDefaultProfile)?;
            if let Some(target) = &self.route_to {
                if !is_routable(target) {
                    return Err(ConfigError::RouteTo(target.clone()));
                }
                default.mode = Mode::Relay { targets: vec![target.clone()] };
            }
            if let Some(addr) = self.sip_listen {
                // The profiles on the default's addresses (the IVR's `pay`) move with it.
                let old = default.listen.clone();
                let new = vec![Listen { tcp: false, addr }, Listen { tcp: true, addr }];
                for profile in profiles.iter_mut().filter(|p| p.listen == old) {
                    profile.listen = new.clone();
                }
            }
        }
        let rtp_ports = parse_ports(&self.rtp_ports)
            .ok_or_else(|| ConfigError::RtpPorts(self.rtp_ports.clone()))?;
        Ok(ServeConfig {
            profiles,
            http_listen: self.http_listen,
            data_dir: self.data_dir,
            rtp_ports,
            rtp_quarantine: std::time::Duration::from_secs(self.rtp_quarantine),
            media_tick: std::time::Duration::from_micros(self.media_tick_us.min(20_000)),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace),
            config_file: self.config,
            database_url: self.database_url,
            node: self.node_id.unwrap_or_else(host_name),
            feed_heartbeat: std::time::Duration::from_secs(self.feed_heartbeat.max(1)),
        })
    }
}

/// The kernel's host name, or `node-1` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node-1".to_owned())
}

fn parse_ports(s: &str) -> Option<(u16, u16)> {
    let (low, high) = s.split_once('-')?;
    let (low, high) = (low.trim().parse::<u16>().ok()?, high.trim().parse::<u16>().ok()?);
    (low >= 1024 && low < high && low % 2 == 0).then_some((low, high))
}
