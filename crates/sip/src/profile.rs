//! SIP profiles: one TOML file per profile in `sip-profiles/`, saying where to listen, whom
//! to accept calls from, which codecs to let through, how to mask, and where to route.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ivrpay_dtmf::MaskMode;
use serde::Deserialize;

use crate::media::{LatchFrom, Leg};
use crate::sdp::{CodecPolicy, codec_from_name};

/// `sip-profiles/*.toml` at build time (a test checks that they parse).
const EMBEDDED: &[(&str, &str)] = &[
    ("sip-profiles/default.toml", include_str!("../../../sip-profiles/default.toml")),
    ("sip-profiles/ivr.toml", include_str!("../../../sip-profiles/ivr.toml")),
];

/// Whether `target` is a `sip:` URI ivrpay can send to (its host an IP address: ivrpay
/// does no DNS).
pub fn is_routable(target: &str) -> bool {
    target.starts_with("sip:")
        && target
            .parse::<ezk_sip_types::uri::SipUri>()
            .ok()
            .is_some_and(|uri| uri.host_port.ip().is_some())
}

/// A listen address and transport, written `udp:127.0.0.1:5060` or `tcp:…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Listen {
    pub tcp: bool,
    pub addr: SocketAddr,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", if self.tcp { "tcp" } else { "udp" }, self.addr)
    }
}

/// An IP network, written `10.0.0.0/8` or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Who may send requests in a call's dialogs (BYE, re-INVITE, UPDATE, INFO, ACK) besides the
/// leg's own peer. The peer is known by IP address, on any port (a PBX may send from another
/// port than it answered from, or over a new TCP connection): for the customer leg the address
/// its INVITE came from, for the agent leg the target ivrpay called and the address the
/// Contact of its answer names. Other nodes that may send in the same dialog, a carrier's SBC
/// cluster or a PBX cluster, are listed here per leg (`[dialogs] customer_sources` and
/// `agent_sources`). A request from anywhere else is answered 481, as for a dialog that does
/// not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialogSources {
    pub customer: Vec<Network>,
    pub agent: Vec<Network>,
}

impl DialogSources {
    /// Whether `ip` is listed for `leg`.
    pub fn lists(&self, leg: Leg, ip: IpAddr) -> bool {
        let networks = match leg {
            Leg::Customer => &self.customer,
            Leg::Agent => &self.agent,
        };
        networks.iter().any(|n| n.contains(ip))
    }
}

/// What a profile does with the calls it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Relay to the contact centre: targets in failover order.
    Relay { targets: Vec<String> },
    /// Answer the call itself (IVR self-service).
    Ivr,
}

/// What the agent hears while the customer is in the IVR during a hand-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentHold {
    Silence,
    /// The prompt set's `agent-hold` message, looped.
    Announcement,
}

/// The IVR's settings: for the calls an IVR profile answers, and for hand-offs to the IVR on
/// the calls any profile relays.
#[derive(Clone, Debug, PartialEq)]
pub struct IvrSettings {
    /// A directory of prompt WAVs used instead of the built-in set, file by file (a name
    /// missing there comes from the built-in set). Relative to the profile file.
    pub prompts: Option<PathBuf>,
    /// The currency of an `X-Ivrpay-Amount` that comes without `X-Ivrpay-Currency`.
    pub currency: String,
    /// How long the caller has to press the first key once a prompt has finished.
    pub first_digit_timeout: Duration,
    /// When the INVITE names no amount, ask the caller for a payment request's reference
    /// (else the call is told there is nothing to pay and ends).
    pub payment_requests: bool,
    /// What the agent hears during a hand-off.
    pub agent_hold: AgentHold,
}

impl Default for IvrSettings {
    fn default() -> Self {
        IvrSettings {
            prompts: None,
            currency: "GBP".to_owned(),
            first_digit_timeout: Duration::from_secs(10),
            payment_requests: true,
            agent_hold: AgentHold::Announcement,
        }
    }
}

/// A profile, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub listen: Vec<Listen>,
    /// Only calls from these networks are accepted (empty: from anywhere).
    pub allowed_sources: Vec<Network>,
    /// Who else may send requests in a call's dialogs (see [`DialogSources`]).
    pub dialog_sources: DialogSources,
    /// When set, only INVITEs whose Request-URI user is this take this profile (the most
    /// specific profile on a listen address wins).
    pub match_user: Option<String>,
    /// The address put in SDP for the relay's ports (default: the listen address).
    pub media_address: Option<IpAddr>,
    pub codecs: CodecPolicy,
    pub mask_mode: MaskMode,
    pub lookahead_ms: f32,
    /// Send media to where the peer's packets come from (symmetric RTP) rather than where
    /// its SDP says.
    pub latching: bool,
    /// Which sources a leg may latch onto: the SDP's address (`"sdp"`), or any port of the
    /// leg's SIP peer's IP (`"sip-peer"`, for peers behind NAT).
    pub latch_from: LatchFrom,
    pub mode: Mode,
    /// Give up on a target that has not answered at all after this long.
    pub failover_timeout: Duration,
    /// Give up on a call that rings this long without an answer (408).
    pub ring_timeout: Duration,
    /// Headers copied from one leg to the other: names, or prefixes ending in `*`.
    pub pass_headers: Vec<String>,
    /// Headers never copied, even if they match `pass_headers`.
    pub strip_headers: Vec<String>,
    /// Concurrent calls; beyond it, 503.
    pub max_calls: usize,
    /// The header that names the agent (read from the INVITE or the answer).
    pub agent_header: Option<String>,
    /// The IVR (self-service calls of an IVR profile, hand-offs on relayed calls).
    pub ivr: IvrSettings,
}

/// A profile file that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProfileError {
    Io { path: String, error: std::io::Error },
    Toml { path: String, error: toml::de::Error },
    Invalid { path: String, problem: String },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Io { path, error } => write!(f, "{path}: {error}"),
            ProfileError::Toml { path, error } => write!(f, "{path}: {}", error.message()),
            ProfileError::Invalid { path, problem } => write!(f, "{path}: {problem}"),
        }
    }
}

impl std::error::Error for ProfileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    listen: Vec<String>,
    #[serde(default)]
    allowed_sources: Vec<String>,
    match_user: Option<String>,
    #[serde(default)]
    media: MediaSection,
    #[serde(default)]
    mask: MaskSection,
    #[serde(default)]
    routing: RoutingSection,
    #[serde(default)]
    headers: HeadersSection,
    #[serde(default)]
    dialogs: DialogsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    ivr: IvrSection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DialogsSection {
    #[serde(default)]
    customer_sources: Vec<String>,
    #[serde(default)]
    agent_sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaSection {
    address: Option<IpAddr>,
    codecs: Vec<String>,
    telephone_event: bool,
    latching: bool,
    #[serde(default)]
    latch_from: Option<String>,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            address: None,
            codecs: vec!["PCMU".into(), "PCMA".into()],
            telephone_event: true,
            latching: true,
            latch_from: None,
        }
    }
}

impl MediaSection {
    fn latch_from(&self) -> Result<LatchFrom, String> {
        match self.latch_from.as_deref() {
            None | Some("sdp") => Ok(LatchFrom::Sdp),
            Some("sip-peer") => Ok(LatchFrom::SignallingPeer),
            Some(other) => {
                Err(format!("media.latch_from {other:?}: expected \"sdp\" or \"sip-peer\""))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskSection {
    mode: String,
    lookahead_ms: f32,
}

impl Default for MaskSection {
    fn default() -> Self {
        MaskSection { mode: "tone".into(), lookahead_ms: 20.0 }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoutingSection {
    #[serde(default)]
    ivr: bool,
    #[serde(default)]
    targets: Vec<String>,
    failover_timeout_ms: Option<u64>,
    ring_timeout_s: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HeadersSection {
    #[serde(default)]
    pass: Vec<String>,
    #[serde(default)]
    strip: Vec<String>,
    agent: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_calls: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IvrSection {
    prompts: Option<String>,
    currency: Option<String>,
    first_digit_timeout_s: Option<u64>,
    payment_requests: Option<bool>,
    agent_hold: Option<String>,
}

impl IvrSection {
    fn settings(self, origin: &str) -> Result<IvrSettings, String> {
        let default = IvrSettings::default();
        let currency = self.currency.unwrap_or(default.currency);
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("ivr.currency {currency:?}: expected an ISO 4217 code (GBP)"));
        }
        let first_digit_timeout = match self.first_digit_timeout_s {
            None => default.first_digit_timeout,
            Some(s @ 1..=120) => Duration::from_secs(s),
            Some(_) => return Err("ivr.first_digit_timeout_s must be 1 to 120".into()),
        };
        let agent_hold = match self.agent_hold.as_deref() {
            None | Some("announcement") => AgentHold::Announcement,
            Some("silence") => AgentHold::Silence,
            Some(other) => {
                return Err(format!(
                    "ivr.agent_hold {other:?}: expected \"announcement\" or \"silence\""
                ));
            }
        };
        let prompts = self.prompts.map(|dir| {
            let dir = PathBuf::from(dir);
            match Path::new(origin).parent() {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir,
            }
        });
        Ok(IvrSettings {
            prompts,
            currency,
            first_digit_timeout,
            payment_requests: self.payment_requests.unwrap_or(default.payment_requests),
            agent_hold,
        })
    }
}

fn parse_listen(s: &str) -> Option<Listen> {
    let (transport, addr) = s.split_once(':')?;
    let tcp = match transport {
        "udp" => false,
        "tcp" => true,
        _ => return None,
    };
    Some(Listen { tcp, addr: addr.parse().ok()? })
}

fn parse_network(s: &str) -> Option<Network> {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
        None => {
            let addr = s.parse::<IpAddr>().ok()?;
            (addr, if addr.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(Network { addr, prefix })
}

impl Profile {
    /// Parses one profile from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let file: File = toml::from_str(text)
            .map_err(|error| ProfileError::Toml { path: origin.into(), error })?;
        let invalid = |problem: String| ProfileError::Invalid { path: origin.into(), problem };
        let name = file.name.unwrap_or_else(|| {
            Path::new(origin).file_stem().and_then(|s| s.to_str()).unwrap_or("default").to_owned()
        });
        if file.listen.is_empty() {
            return Err(invalid("listen must name at least one address".into()));
        }
        let listen = file
            .listen
            .iter()
            .map(|l| {
                parse_listen(l).ok_or_else(|| {
                    invalid(format!("listen {l:?}: expected udp:IP:PORT or tcp:IP:PORT"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let networks = |setting: &str, list: &[String]| {
            list.iter()
                .map(|n| {
                    parse_network(n).ok_or_else(|| {
                        invalid(format!("{setting} {n:?}: expected IP or IP/PREFIX"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let allowed_sources = networks("allowed_sources", &file.allowed_sources)?;
        let dialog_sources = DialogSources {
            customer: networks("dialogs.customer_sources", &file.dialogs.customer_sources)?,
            agent: networks("dialogs.agent_sources", &file.dialogs.agent_sources)?,
        };
        let codecs = file
            .media
            .codecs
            .iter()
            .map(|c| {
                codec_from_name(c).ok_or_else(|| {
                    invalid(format!("codec {c:?}: only PCMU and PCMA are supported"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if codecs.is_empty() {
            return Err(invalid("media.codecs must name at least one codec".into()));
        }
        let latch_from = file.media.latch_from().map_err(invalid)?;
        let mask_mode =
            file.mask.mode.parse::<MaskMode>().map_err(|e| invalid(format!("mask.mode: {e}")))?;
        if !(0.0..=200.0).contains(&file.mask.lookahead_ms) {
            return Err(invalid("mask.lookahead_ms must be 0 to 200".into()));
        }
        let mode = if file.routing.ivr {
            Mode::Ivr
        } else {
            for target in &file.routing.targets {
                if !is_routable(target) {
                    return Err(invalid(format!(
                        "routing target {target:?} is not a sip: URI on an IP address"
                    )));
                }
            }
            Mode::Relay { targets: file.routing.targets }
        };
        let ivr = file.ivr.settings(origin).map_err(invalid)?;
        Ok(Profile {
            name,
            listen,
            allowed_sources,
            dialog_sources,
            match_user: file.match_user,
            media_address: file.media.address,
            codecs: CodecPolicy { codecs, telephone_event: file.media.telephone_event },
            mask_mode,
            lookahead_ms: file.mask.lookahead_ms,
            latching: file.media.latching,
            latch_from,
            mode,
            failover_timeout: Duration::from_millis(
                file.routing.failover_timeout_ms.unwrap_or(2000),
            ),
            ring_timeout: Duration::from_secs(file.routing.ring_timeout_s.unwrap_or(120)),
            pass_headers: file.headers.pass,
            strip_headers: file.headers.strip,
            max_calls: file.limits.max_calls.unwrap_or(10_000),
            agent_header: file.headers.agent,
            ivr,
        })
    }

    /// The profiles shipped in the repository's `sip-profiles/`, built in: `ivrpay serve`
    /// runs on them when no profile directory is given.
    pub fn embedded() -> Vec<Profile> {
        EMBEDDED
            .iter()
            .map(|(name, text)| {
                Profile::from_toml(text, name)
                    .unwrap_or_else(|e| panic!("embedded profile {name}: {e}"))
            })
            .collect()
    }

    /// Reads every `*.toml` in a directory, in name order.
    pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, ProfileError> {
        let io = |error| ProfileError::Io { path: dir.display().to_string(), error };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|error| ProfileError::Io { path: origin.clone(), error })?;
                Profile::from_toml(&text, &origin)
            })
            .collect()
    }

    /// Whether calls from `ip` are accepted.
    pub fn accepts_source(&self, ip: IpAddr) -> bool {
        self.allowed_sources.is_empty() || self.allowed_sources.iter().any(|n| n.contains(ip))
    }

    /// Whether a header is copied to the other leg.
    pub fn passes_header(&self, name: &str) -> bool {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => {
                name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
            }
            None => name.eq_ignore_ascii_case(pattern),
        };
        self.pass_headers.iter().any(matches) && !self.strip_headers.iter().any(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
        allowed_sources = ["127.0.0.0/8", "10.1.2.3"]
        [media]
        codecs = ["PCMA", "PCMU"]
        telephone_event = true
        latching = false
        latch_from = "sip-peer"
        [mask]
        mode = "noise"
        lookahead_ms = 30
        [routing]
        targets = ["sip:agents@127.0.0.1:5080", "sip:agents@127.0.0.1:5082"]
        failover_timeout_ms = 500
        [headers]
        pass = ["X-*", "User-to-User"]
        strip = ["X-Secret"]
        agent = "X-Agent-Id"
        [dialogs]
        customer_sources = ["192.0.2.0/28"]
        agent_sources = ["198.51.100.7"]
        [limits]
        max_calls = 3
    "#;

    #[test]
    fn parses_every_setting() {
        let p = Profile::from_toml(EXAMPLE, "sip-profiles/trunk.toml").expect("valid");
        assert_eq!(p.name, "trunk");
        assert_eq!(p.listen.len(), 2);
        assert!(p.listen[1].tcp);
        assert!(p.accepts_source("127.9.9.9".parse().expect("ip")));
        assert!(p.accepts_source("10.1.2.3".parse().expect("ip")));
        assert!(!p.accepts_source("10.1.2.4".parse().expect("ip")));
        assert_eq!(p.codecs.codecs, vec![crate::sdp::Codec::Pcma, crate::sdp::Codec::Pcmu]);
        assert_eq!(p.mask_mode, MaskMode::Noise);
        assert_eq!(p.latch_from, LatchFrom::SignallingPeer);
        assert_eq!(
            p.mode,
            Mode::Relay {
                targets: vec![
                    "sip:agents@127.0.0.1:5080".into(),
                    "sip:agents@127.0.0.1:5082".into()
                ]
            }
        );
        assert!(p.passes_header("X-Customer") && p.passes_header("user-to-user"));
        assert!(!p.passes_header("X-Secret") && !p.passes_header("Subject"));
        assert_eq!(p.max_calls, 3);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(p.dialog_sources.lists(Leg::Customer, ip("192.0.2.15")));
        assert!(!p.dialog_sources.lists(Leg::Customer, ip("192.0.2.16")));
        assert!(!p.dialog_sources.lists(Leg::Customer, ip("198.51.100.7")));
        assert!(p.dialog_sources.lists(Leg::Agent, ip("198.51.100.7")));
    }

    #[test]
    fn the_shipped_profiles_parse() {
        let profiles = Profile::embedded();
        assert!(profiles.iter().any(|p| p.name == "default"));
        // The IVR answers calls to `pay` on the default profile's addresses.
        let ivr = profiles.iter().find(|p| p.name == "ivr").expect("ivr profile");
        let default = profiles.iter().find(|p| p.name == "default").expect("default profile");
        assert_eq!(ivr.mode, Mode::Ivr);
        assert_eq!(ivr.match_user.as_deref(), Some("pay"));
        assert_eq!(ivr.listen, default.listen);
        // Media is latched onto the SDP's address only unless a profile says otherwise.
        assert!(profiles.iter().all(|p| p.latch_from == LatchFrom::Sdp));
        let minimal = Profile::from_toml("listen = [\"udp:127.0.0.1:5060\"]", "p.toml");
        assert_eq!(minimal.expect("valid").latch_from, LatchFrom::Sdp);
    }

    #[test]
    fn ivr_settings() {
        let text = "listen = [\"udp:127.0.0.1:5060\"]\nmatch_user = \"pay\"\n[routing]\nivr = true\n\
                    [ivr]\nprompts = \"voice\"\ncurrency = \"EUR\"\nfirst_digit_timeout_s = 7\n\
                    payment_requests = false\nagent_hold = \"silence\"";
        let p = Profile::from_toml(text, "/etc/ivrpay/profiles/pay.toml").expect("valid");
        assert_eq!(p.mode, Mode::Ivr);
        assert_eq!(
            p.ivr,
            IvrSettings {
                prompts: Some(PathBuf::from("/etc/ivrpay/profiles/voice")),
                currency: "EUR".into(),
                first_digit_timeout: Duration::from_secs(7),
                payment_requests: false,
                agent_hold: AgentHold::Silence,
            }
        );
        // A relay profile has the defaults (for hand-offs).
        let relay = Profile::from_toml(EXAMPLE, "trunk.toml").expect("valid");
        assert_eq!(relay.ivr, IvrSettings::default());
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        for (text, expected) in [
            ("listen = []", "at least one"),
            ("listen = [\"sctp:1.2.3.4:5\"]", "expected udp:IP:PORT"),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\nallowed_sources = [\"10.0.0.0/33\"]",
                "allowed_sources",
            ),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\n[dialogs]\nagent_sources = [\"pbx.example\"]",
                "dialogs.agent_sources \"pbx.example\"",
            ),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\n[media]\ncodecs = [\"G729\"]\ntelephone_event = true\nlatching = true",
                "G729",
            ),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\n[mask]\nmode = \"beep\"\nlookahead_ms = 20",
                "mask.mode",
            ),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\n[routing]\ntargets = [\"tel:123\"]",
                "not a sip: URI",
            ),
            ("listen = [\"udp:127.0.0.1:5060\"]\nunknown = 1", "unknown"),
            (
                "listen = [\"udp:127.0.0.1:5060\"]\n[media]\ncodecs = [\"PCMU\"]\ntelephone_event = true\nlatching = true\nlatch_from = \"anyone\"",
                "media.latch_from \"anyone\": expected \"sdp\" or \"sip-peer\"",
            ),
            ("listen = [\"udp:127.0.0.1:5060\"]\n[ivr]\ncurrency = \"pounds\"", "ivr.currency"),
            ("listen = [\"udp:127.0.0.1:5060\"]\n[ivr]\nagent_hold = \"music\"", "ivr.agent_hold"),
            ("listen = [\"udp:127.0.0.1:5060\"]\n[ivr]\nfirst_digit_timeout_s = 0", "1 to 120"),
        ] {
            let err = Profile::from_toml(text, "p.toml").expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
