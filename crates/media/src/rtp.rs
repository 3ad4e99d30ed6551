//! RTP fixed header (RFC 3550 §5.1): a zero-copy reader and a writer.
//!
//! The relay rewrites every header it forwards (sequence, timestamp, SSRC, payload type), so
//! it only ever writes the 12-byte fixed header; CSRC lists and header extensions of the
//! input are read past and not forwarded.

use std::fmt;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;

/// A malformed RTP packet. The relay counts these and drops the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    TooShort { len: usize },
    /// The version field is not 2.
    BadVersion { version: u8 },
    /// The CSRC list or the header extension runs past the end of the packet.
    HeaderOverrun { len: usize },
    /// The padding count is zero or larger than the payload.
    BadPadding { count: u8 },
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort { len } => write!(f, "RTP packet of {len} bytes is too short"),
            RtpError::BadVersion { version } => write!(f, "RTP version {version}, expected 2"),
            RtpError::HeaderOverrun { len } => {
                write!(f, "RTP header (CSRC or extension) runs past the packet's {len} bytes")
            }
            RtpError::BadPadding { count } => write!(f, "RTP padding count {count} is invalid"),
        }
    }
}

impl std::error::Error for RtpError {}

/// A parsed RTP packet, borrowing the datagram.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The payload, without CSRCs, extension and padding.
    pub payload: &'a [u8],
}

impl fmt::Debug for RtpPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may be a telephone-event (card data): show only its length.
        f.debug_struct("RtpPacket")
            .field("marker", &self.marker)
            .field("payload_type", &self.payload_type)
            .field("sequence", &self.sequence)
            .field("timestamp", &self.timestamp)
            .field("ssrc", &self.ssrc)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<'a> RtpPacket<'a> {
    /// Parses a datagram.
    pub fn parse(data: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let len = data.len();
        let &[b0, b1, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3, ..] = data else {
            return Err(RtpError::TooShort { len });
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        let mut start = HEADER_LEN + 4 * usize::from(b0 & 0x0f);
        if b0 & 0x10 != 0 {
            let ext = data.get(start..start + 4).ok_or(RtpError::HeaderOverrun { len })?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if start > len {
            return Err(RtpError::HeaderOverrun { len });
        }
        let mut end = len;
        if b0 & 0x20 != 0 {
            let count = data[len - 1];
            if count == 0 || usize::from(count) > len - start {
                return Err(RtpError::BadPadding { count });
            }
            end -= usize::from(count);
        }
        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
            payload: &data[start..end],
        })
    }
}

/// The fields of a header the relay writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl Header {
    /// Writes the 12-byte fixed header (no padding, extension or CSRC) into `out`, which must
    /// hold at least [`HEADER_LEN`] bytes.
    pub fn write(&self, out: &mut [u8]) {
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// RFC 5761 §4: with RTCP multiplexed on the RTP port, a second byte of 192-223 (RTP payload
/// types 64-95 with the marker set) marks RTCP.
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|&b| (192..=223).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_skips_csrc_extension_padding() {
        let mut buf = [0u8; 64];
        let h = Header { marker: true, payload_type: 8, sequence: 65535, timestamp: 7, ssrc: 9 };
        h.write(&mut buf);
        buf[12..16].copy_from_slice(b"abcd");
        let p = RtpPacket::parse(&buf[..16]).expect("valid");
        assert_eq!(
            (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (true, 8, 65535, 7, 9)
        );
        assert_eq!(p.payload, b"abcd");

        // Two CSRCs, a one-word extension, two bytes of padding.
        let mut v = vec![0xb2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend([0u8; 8]); // CSRCs
        v.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension header + one word
        v.extend(b"xyz");
        v.extend([0, 2]); // padding
        let p = RtpPacket::parse(&v).expect("valid");
        assert_eq!(p.payload, b"xyz");
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::BadVersion { version: 1 }));
        let mut csrc = [0u8; 12];
        csrc[0] = 0x8f;
        assert_eq!(RtpPacket::parse(&csrc), Err(RtpError::HeaderOverrun { len: 12 }));
        let mut ext = [0u8; 16];
        ext[0] = 0x90;
        ext[14] = 0xff;
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::HeaderOverrun { len: 16 }));
        let mut pad = [0u8; 14];
        pad[0] = 0xa0;
        pad[13] = 9;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding { count: 9 }));
        pad[13] = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding { count: 0 }));
    }

    #[test]
    fn rtcp_demultiplexing() {
        assert!(looks_like_rtcp(&[0x80, 200]));
        assert!(!looks_like_rtcp(&[0x80, 0]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 101]));
        assert!(!looks_like_rtcp(&[0x80]));
    }
}
