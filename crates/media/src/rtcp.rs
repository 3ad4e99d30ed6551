//! RTCP relay (RFC 3550 §6): compound packets are checked, their SSRCs mapped onto the
//! streams the relay sends, and forwarded as bytes.
//!
//! The relay re-sequences the agent's stream (telephone-events are removed, replacement audio
//! inserted), so a sender report's SSRC and RTP timestamp are rewritten into the outgoing
//! stream's terms; counts, jitter and loss figures pass as measured.

use std::fmt;

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
const APP: u8 = 204;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;
const XR: u8 = 207;
const REPORT_BLOCK: usize = 24;

/// A malformed RTCP packet. The relay counts these and drops the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpError {
    /// Empty, or a packet header cut short.
    TooShort { len: usize },
    /// A packet whose version field is not 2.
    BadVersion { version: u8 },
    /// A packet type outside RTCP's range (192-223).
    NotRtcp { packet_type: u8 },
    /// A packet's length field, or its report blocks or SDES chunks, run past the datagram.
    Overrun { offset: usize },
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcpError::TooShort { len } => write!(f, "RTCP datagram of {len} bytes is too short"),
            RtcpError::BadVersion { version } => write!(f, "RTCP version {version}, expected 2"),
            RtcpError::NotRtcp { packet_type } => {
                write!(f, "packet type {packet_type} is not an RTCP packet type")
            }
            RtcpError::Overrun { offset } => {
                write!(f, "RTCP packet at byte {offset} runs past the end of the datagram")
            }
        }
    }
}

impl std::error::Error for RtcpError {}

fn ssrc_at(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn map_at(buf: &mut [u8], at: usize, map: &mut impl FnMut(u32) -> u32) {
    let mapped = map(ssrc_at(buf, at));
    buf[at..at + 4].copy_from_slice(&mapped.to_be_bytes());
}

/// Checks a compound packet and rewrites it in place: every SSRC through `ssrc`, and each
/// sender report's RTP timestamp through `timestamp(sender_ssrc, rtp_timestamp)` (given the
/// SSRC as received). On error the buffer may be partly rewritten; it must then be dropped.
pub fn rewrite(
    buf: &mut [u8],
    mut ssrc: impl FnMut(u32) -> u32,
    mut timestamp: impl FnMut(u32, u32) -> u32,
) -> Result<(), RtcpError> {
    let len = buf.len();
    if len < 4 {
        return Err(RtcpError::TooShort { len });
    }
    let mut offset = 0;
    while offset < len {
        let Some(&[b0, packet_type, l0, l1]) = buf.get(offset..offset + 4) else {
            return Err(RtcpError::TooShort { len });
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { version });
        }
        if !(192..=223).contains(&packet_type) {
            return Err(RtcpError::NotRtcp { packet_type });
        }
        let size = 4 * (usize::from(u16::from_be_bytes([l0, l1])) + 1);
        let end = offset + size;
        if end > len {
            return Err(RtcpError::Overrun { offset });
        }
        let count = usize::from(b0 & 0x1f);
        let packet = &mut buf[offset..end];
        rewrite_one(packet, packet_type, count, &mut ssrc, &mut timestamp)
            .ok_or(RtcpError::Overrun { offset })?;
        offset = end;
    }
    Ok(())
}

/// Rewrites one packet; `None` if its contents overrun it.
fn rewrite_one(
    p: &mut [u8],
    packet_type: u8,
    count: usize,
    ssrc: &mut impl FnMut(u32) -> u32,
    timestamp: &mut impl FnMut(u32, u32) -> u32,
) -> Option<()> {
    let size = p.len();
    let blocks = |first: usize| {
        let end = first + count * REPORT_BLOCK;
        (end <= size).then_some(first)
    };
    match packet_type {
        SR => {
            let first = blocks(28)?;
            let sender = ssrc_at(p, 4);
            let ts = ssrc_at(p, 16);
            p[16..20].copy_from_slice(&timestamp(sender, ts).to_be_bytes());
            map_at(p, 4, ssrc);
            for i in 0..count {
                map_at(p, first + i * REPORT_BLOCK, ssrc);
            }
        }
        RR => {
            let first = blocks(8)?;
            map_at(p, 4, ssrc);
            for i in 0..count {
                map_at(p, first + i * REPORT_BLOCK, ssrc);
            }
        }
        SDES => {
            let mut at = 4;
            for _ in 0..count {
                if at + 4 > size {
                    return None;
                }
                map_at(p, at, ssrc);
                at += 4;
                // Items until a zero type byte, then padding to the next 32-bit boundary.
                loop {
                    let &kind = p.get(at)?;
                    if kind == 0 {
                        at = (at + 4) & !3;
                        break;
                    }
                    let &item_len = p.get(at + 1)?;
                    at += 2 + usize::from(item_len);
                }
                if at > size {
                    return None;
                }
            }
        }
        BYE => {
            if 4 + 4 * count > size {
                return None;
            }
            for i in 0..count {
                map_at(p, 4 + 4 * i, ssrc);
            }
        }
        RTPFB | PSFB => {
            if size < 12 {
                return None;
            }
            map_at(p, 4, ssrc);
            map_at(p, 8, ssrc);
        }
        APP | XR => {
            if size < 8 {
                return None;
            }
            map_at(p, 4, ssrc);
        }
        _ => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u8, packet_type: u8, words: u16) -> [u8; 4] {
        let [l0, l1] = words.to_be_bytes();
        [0x80 | count, packet_type, l0, l1]
    }

    /// SR with one report block + SDES CNAME + BYE, as one compound packet.
    fn compound() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(header(1, SR, 12));
        v.extend(1u32.to_be_bytes()); // sender SSRC
        v.extend([0u8; 8]); // NTP
        v.extend(1000u32.to_be_bytes()); // RTP timestamp
        v.extend([0u8; 8]); // counts
        v.extend(2u32.to_be_bytes()); // report block about SSRC 2
        v.extend([0u8; 20]);
        v.extend(header(1, SDES, 3));
        v.extend(1u32.to_be_bytes());
        v.extend([1, 3, b'a', b'b', b'c', 0, 0, 0]);
        v.extend(header(1, BYE, 1));
        v.extend(1u32.to_be_bytes());
        v
    }

    #[test]
    fn maps_every_ssrc_and_the_sender_report_timestamp() {
        let mut v = compound();
        rewrite(&mut v, |s| s + 100, |s, ts| if s == 1 { ts + 160 } else { ts }).expect("valid");
        assert_eq!(ssrc_at(&v, 4), 101);
        assert_eq!(ssrc_at(&v, 16), 1160);
        assert_eq!(ssrc_at(&v, 28), 102);
        assert_eq!(ssrc_at(&v, 56), 101);
        assert_eq!(ssrc_at(&v, 72), 101);
        assert_eq!(&v[62..65], b"abc");
    }

    #[test]
    fn malformed_compounds_are_errors() {
        let good = compound();
        assert_eq!(rewrite(&mut [0x80, 200], |s| s, |_, t| t), Err(RtcpError::TooShort { len: 2 }));
        let mut v = good.clone();
        v[0] = 0x41;
        assert_eq!(rewrite(&mut v, |s| s, |_, t| t), Err(RtcpError::BadVersion { version: 1 }));
        let mut v = good.clone();
        v[1] = 96;
        assert_eq!(rewrite(&mut v, |s| s, |_, t| t), Err(RtcpError::NotRtcp { packet_type: 96 }));
        let mut v = good.clone();
        v.truncate(good.len() - 2);
        assert!(matches!(rewrite(&mut v, |s| s, |_, t| t), Err(RtcpError::Overrun { .. })));
        // An SR claiming five report blocks in a packet sized for one.
        let mut v = good.clone();
        v[0] = 0x85;
        assert_eq!(rewrite(&mut v, |s| s, |_, t| t), Err(RtcpError::Overrun { offset: 0 }));
        // An SDES item longer than its packet.
        let mut v = good;
        v[61] = 200;
        assert!(matches!(rewrite(&mut v, |s| s, |_, t| t), Err(RtcpError::Overrun { .. })));
    }
}
