//! SDP offer/answer through the B2BUA: each leg sees ivrpay's address and ports (the relay
//! anchors the media), only the codecs the profile allows, telephone-event where it was
//! offered, and the other side's direction and RTCP attributes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sdp_types::{
    Connection, Direction, MediaDescription, MediaType, Origin, Rtcp, SessionDescription,
    TaggedAddress, TransportProtocol,
};

/// The audio codecs the relay can decode (it must, to hear in-band DTMF): the relay's own
/// type, so what the SDP negotiates is what the relay runs.
pub use ivrpay_media::Codec;

/// The name of a codec in `a=rtpmap` and in profiles.
pub fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcmu => "PCMU",
        Codec::Pcma => "PCMA",
    }
}

/// The codec an `a=rtpmap` or profile name stands for.
pub fn codec_from_name(name: &str) -> Option<Codec> {
    if name.eq_ignore_ascii_case("PCMU") {
        Some(Codec::Pcmu)
    } else if name.eq_ignore_ascii_case("PCMA") {
        Some(Codec::Pcma)
    } else {
        None
    }
}

/// What a profile lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecPolicy {
    /// In order of preference.
    pub codecs: Vec<Codec>,
    /// Keep telephone-event when the other side offered it.
    pub telephone_event: bool,
}

impl Default for CodecPolicy {
    fn default() -> Self {
        CodecPolicy { codecs: vec![Codec::Pcmu, Codec::Pcma], telephone_event: true }
    }
}

/// One leg's audio stream as its SDP describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// Where to send RTP; `None` when the port is 0 (stream rejected or removed) or the
    /// address is 0.0.0.0 (old-style hold).
    pub rtp: Option<SocketAddr>,
    /// Where to send RTCP (a=rtcp, else RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// Payload types in the order given, with the codec each carries.
    pub codecs: Vec<(u8, Codec)>,
    /// The telephone-event payload type, if any.
    pub telephone_event: Option<u8>,
    /// a=ptime in ms.
    pub ptime: Option<u32>,
    pub direction: Direction,
}

/// Why an SDP body cannot be used; answered with 488 Not Acceptable Here.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// Not valid SDP.
    Malformed,
    /// No audio stream.
    NoAudio,
    /// Secure RTP or another profile the relay does not terminate.
    UnsupportedProfile,
    /// None of the offered codecs is allowed.
    NoCommonCodec,
    /// A connection address that is not an IP address.
    UnresolvedAddress,
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SdpError::Malformed => "SDP cannot be parsed",
            SdpError::NoAudio => "SDP has no audio stream",
            SdpError::UnsupportedProfile => "only RTP/AVP audio is supported",
            SdpError::NoCommonCodec => "no offered codec is allowed (PCMU/PCMA)",
            SdpError::UnresolvedAddress => "SDP connection address is not an IP address",
        })
    }
}

impl std::error::Error for SdpError {}

/// Parses an SDP body.
pub fn parse(body: &Bytes) -> Result<SessionDescription, SdpError> {
    let text = BytesStr::from_utf8_bytes(body.clone()).map_err(|_| SdpError::Malformed)?;
    SessionDescription::parse(&text).map_err(|_| SdpError::Malformed)
}

/// The index of the first audio m-line.
fn audio_index(sdp: &SessionDescription) -> Option<usize> {
    sdp.media_descriptions.iter().position(|m| m.media.media_type == MediaType::Audio)
}

fn ip_of(address: &TaggedAddress) -> Result<IpAddr, SdpError> {
    match address {
        TaggedAddress::IP4(ip) => Ok(IpAddr::V4(*ip)),
        TaggedAddress::IP6(ip) => Ok(IpAddr::V6(*ip)),
        _ => Err(SdpError::UnresolvedAddress),
    }
}

fn payload_codec(media: &MediaDescription, pt: u8) -> Option<Codec> {
    match media.rtpmap.iter().find(|r| r.payload == pt) {
        Some(map) if map.clock_rate == 8000 => codec_from_name(map.encoding.as_str()),
        Some(_) => None,
        None => match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        },
    }
}

fn telephone_event_pt(media: &MediaDescription) -> Option<u8> {
    media
        .rtpmap
        .iter()
        .find(|r| {
            r.encoding.as_str().eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000
        })
        .map(|r| r.payload)
}

fn ptime(media: &MediaDescription) -> Option<u32> {
    media
        .attributes
        .iter()
        .find(|a| a.name.as_str() == "ptime")
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.as_str().trim().parse().ok())
}

/// What the audio stream of `sdp` says (the first audio m-line).
pub fn stream_info(sdp: &SessionDescription) -> Result<StreamInfo, SdpError> {
    let index = audio_index(sdp).ok_or(SdpError::NoAudio)?;
    let media = &sdp.media_descriptions[index];
    if media.media.proto != TransportProtocol::RtpAvp {
        return Err(SdpError::UnsupportedProfile);
    }
    let connection =
        media.connection.as_ref().or(sdp.connection.as_ref()).ok_or(SdpError::Malformed)?;
    let ip = ip_of(&connection.address)?;
    let port = media.media.port;
    let rtp = (port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, port));
    let rtcp = rtp.map(|rtp| match &media.rtcp {
        Some(Rtcp { port, address }) => {
            let ip = address.as_ref().and_then(|a| ip_of(a).ok()).unwrap_or(rtp.ip());
            SocketAddr::new(ip, *port)
        }
        None => SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
    });
    let codecs = media
        .media
        .fmts
        .iter()
        .filter_map(|&pt| payload_codec(media, pt).map(|c| (pt, c)))
        .collect();
    Ok(StreamInfo {
        rtp,
        rtcp,
        codecs,
        telephone_event: telephone_event_pt(media),
        ptime: ptime(media),
        direction: media.direction,
    })
}

/// ivrpay's side of one leg: its address, its RTP port (RTCP on the next), and the o= line
/// it keeps for that leg (the version must grow with every new SDP it sends).
#[derive(Clone, Debug)]
pub struct LocalSdp {
    pub rtp: SocketAddr,
    pub session_id: u64,
    pub version: u64,
}

impl LocalSdp {
    pub fn new(rtp: SocketAddr, session_id: u64) -> LocalSdp {
        LocalSdp { rtp, session_id, version: 0 }
    }
}

/// Rewrites the other leg's SDP for this leg: our address, port and origin; codecs filtered
/// by the policy (and, for an answer, to those of our own offer on this leg); every other
/// m-line rejected (port 0). Returns the body to send.
pub fn rewrite(
    sdp: &SessionDescription,
    local: &mut LocalSdp,
    policy: &CodecPolicy,
) -> Result<Bytes, SdpError> {
    let index = audio_index(sdp).ok_or(SdpError::NoAudio)?;
    let source = &sdp.media_descriptions[index];
    if source.media.proto != TransportProtocol::RtpAvp {
        return Err(SdpError::UnsupportedProfile);
    }
    let allowed = |pt: &u8| match payload_codec(source, *pt) {
        Some(codec) => policy.codecs.contains(&codec),
        None => policy.telephone_event && Some(*pt) == telephone_event_pt(source),
    };
    let mut fmts: Vec<u8> = source.media.fmts.iter().copied().filter(allowed).collect();
    if !fmts.iter().any(|pt| payload_codec(source, *pt).is_some()) {
        return Err(SdpError::NoCommonCodec);
    }
    // Preference order of the profile among the allowed codecs, telephone-event last.
    fmts.sort_by_key(|pt| match payload_codec(source, *pt) {
        Some(codec) => policy.codecs.iter().position(|c| *c == codec).unwrap_or(usize::MAX - 1),
        None => usize::MAX,
    });
    let ip = local.rtp.ip();
    let address = TaggedAddress::from(ip);
    local.version += 1;
    let mut audio = source.clone();
    audio.media.port = local.rtp.port();
    audio.media.fmts = fmts.clone();
    audio.connection = Some(Connection { address: address.clone(), ttl: None, num: None });
    audio.rtpmap.retain(|r| fmts.contains(&r.payload));
    audio.fmtp.retain(|f| fmts.contains(&f.format));
    audio.rtcp = Some(Rtcp { port: local.rtp.port().wrapping_add(1), address: None });
    // Addresses and keys of the other side mean nothing on this leg.
    audio.rtcp_mux = false;
    audio.ice_candidates.clear();
    audio.ice_ufrag = None;
    audio.ice_pwd = None;
    audio.crypto.clear();
    audio.fingerprint.clear();
    audio.setup = None;
    audio.ssrc.clear();
    let media_descriptions = sdp
        .media_descriptions
        .iter()
        .enumerate()
        .map(|(i, m)| if i == index { audio.clone() } else { rejected(m) })
        .collect();
    let out = SessionDescription {
        origin: Origin {
            username: BytesStr::from_static("ivrpay"),
            session_id: local.session_id.to_string().into(),
            session_version: local.version.to_string().into(),
            address: address.clone(),
        },
        name: BytesStr::from_static("ivrpay"),
        connection: Some(Connection { address, ttl: None, num: None }),
        bandwidth: sdp.bandwidth.clone(),
        time: sdp.time.clone(),
        direction: sdp.direction,
        group: Vec::new(),
        extmap: Vec::new(),
        extmap_allow_mixed: false,
        ice_lite: false,
        ice_options: Default::default(),
        ice_ufrag: None,
        ice_pwd: None,
        setup: None,
        fingerprint: Vec::new(),
        attributes: sdp.attributes.clone(),
        media_descriptions,
    };
    Ok(Bytes::from(out.to_string()))
}

/// ivrpay's own answer to an offer on a leg it terminates (an IVR call, no other leg): one
/// codec (the profile's first that was offered), telephone-event when offered and allowed,
/// the relay's address and port, the offer's direction answered (`sendonly` gets
/// `recvonly`). Returns the body and the offerer's stream as the relay must use it (that
/// codec only).
pub fn answer(
    offer: &SessionDescription,
    local: &mut LocalSdp,
    policy: &CodecPolicy,
) -> Result<(Bytes, StreamInfo), SdpError> {
    let mut info = stream_info(offer)?;
    let chosen = policy
        .codecs
        .iter()
        .copied()
        .find(|c| info.codecs.iter().any(|(_, offered)| offered == c))
        .ok_or(SdpError::NoCommonCodec)?;
    info.codecs.retain(|(_, c)| *c == chosen);
    info.codecs.truncate(1);
    if !policy.telephone_event {
        info.telephone_event = None;
    }
    let one = CodecPolicy { codecs: vec![chosen], telephone_event: policy.telephone_event };
    let mut answered = offer.clone();
    answered.direction = answered_direction(offer.direction);
    if let Some(index) = audio_index(&answered) {
        let media = &mut answered.media_descriptions[index];
        media.direction = answered_direction(media.direction);
        // Only the chosen payload type of that codec: the answer names what we send.
        let keep = info.codecs.first().map(|(pt, _)| *pt);
        let fmts: Vec<u8> = media
            .media
            .fmts
            .iter()
            .copied()
            .filter(|pt| Some(*pt) == keep || payload_codec(media, *pt).is_none())
            .collect();
        media.media.fmts = fmts;
    }
    Ok((rewrite(&answered, local, &one)?, info))
}

/// The direction that answers `offered` (RFC 3264 §6.1).
fn answered_direction(offered: Direction) -> Direction {
    match offered {
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        other => other,
    }
}

/// ivrpay's own offer on a leg it terminates, for an INVITE that came without one: the
/// profile's codecs in its order and telephone-event 101, 20 ms packets, sendrecv.
pub fn offer(local: &mut LocalSdp, policy: &CodecPolicy) -> Bytes {
    use std::fmt::Write as _;
    local.version += 1;
    let ip = local.rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let static_pt = |c: Codec| match c {
        Codec::Pcmu => 0u8,
        Codec::Pcma => 8,
    };
    let mut fmts: Vec<String> = policy.codecs.iter().map(|c| static_pt(*c).to_string()).collect();
    if policy.telephone_event {
        fmts.push("101".into());
    }
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "v=0\r\no=ivrpay {} {} IN {family} {ip}\r\ns=ivrpay\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {}\r\n",
        local.session_id,
        local.version,
        local.rtp.port(),
        fmts.join(" ")
    );
    for codec in &policy.codecs {
        let _ = write!(out, "a=rtpmap:{} {}/8000\r\n", static_pt(*codec), codec_name(*codec));
    }
    if policy.telephone_event {
        out.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    }
    let _ =
        write!(out, "a=rtcp:{}\r\na=ptime:20\r\na=sendrecv\r\n", local.rtp.port().wrapping_add(1));
    Bytes::from(out)
}

/// The same m-line refused (port 0), as an answer must keep every line of the offer.
fn rejected(media: &MediaDescription) -> MediaDescription {
    MediaDescription::rejected(media.media.media_type)
}
