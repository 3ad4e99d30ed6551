//! Just enough of rtpengine's ng control protocol (bencode over UDP, each datagram a cookie
//! and a dictionary) to set up, mask and delete the load's calls.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A bencode value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<String, Value>),
}

impl Value {
    pub(crate) fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    pub(crate) fn dict(pairs: &[(&str, Value)]) -> Value {
        Value::Dict(pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend(format!("i{i}e").bytes()),
            Value::Bytes(b) => {
                out.extend(format!("{}:", b.len()).bytes());
                out.extend(b);
            }
            Value::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Value::str(k).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    fn decode(b: &[u8], at: &mut usize) -> Option<Value> {
        match *b.get(*at)? {
            b'i' => {
                let end = *at + b[*at..].iter().position(|&c| c == b'e')?;
                let v = std::str::from_utf8(&b[*at + 1..end]).ok()?.parse().ok()?;
                *at = end + 1;
                Some(Value::Int(v))
            }
            b'l' => {
                *at += 1;
                let mut l = Vec::new();
                while *b.get(*at)? != b'e' {
                    l.push(Value::decode(b, at)?);
                }
                *at += 1;
                Some(Value::List(l))
            }
            b'd' => {
                *at += 1;
                let mut d = BTreeMap::new();
                while *b.get(*at)? != b'e' {
                    let Value::Bytes(k) = Value::decode(b, at)? else { return None };
                    let v = Value::decode(b, at)?;
                    d.insert(String::from_utf8_lossy(&k).into_owned(), v);
                }
                *at += 1;
                Some(Value::Dict(d))
            }
            _ => {
                let colon = *at + b[*at..].iter().position(|&c| c == b':')?;
                let n: usize = std::str::from_utf8(&b[*at..colon]).ok()?.parse().ok()?;
                let v = b.get(colon + 1..colon + 1 + n)?.to_vec();
                *at = colon + 1 + n;
                Some(Value::Bytes(v))
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.get(key),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// An ng client on one UDP socket.
pub(crate) struct Ng {
    socket: UdpSocket,
    server: SocketAddr,
    next: u64,
}

impl Ng {
    pub(crate) fn new(server: SocketAddr) -> io::Result<Ng> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Ng { socket, server, next: u64::from(std::process::id()) << 32 })
    }

    /// Sends a command and returns the reply, or the reply's error reason.
    pub(crate) fn call(&mut self, command: &Value) -> Result<Value, String> {
        self.next += 1;
        let cookie = format!("{:x}", self.next);
        let mut msg = cookie.clone().into_bytes();
        msg.push(b' ');
        command.encode(&mut msg);
        for _ in 0..3 {
            self.socket.send_to(&msg, self.server).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 65_536];
            let Ok(n) = self.socket.recv(&mut buf) else { continue };
            let reply = &buf[..n];
            let Some(space) = reply.iter().position(|&c| c == b' ') else { continue };
            if reply[..space] != *cookie.as_bytes() {
                continue;
            }
            let mut at = space + 1;
            let value = Value::decode(reply, &mut at).ok_or("undecodable ng reply")?;
            return match value.text("result").as_deref() {
                Some("ok") | Some("pong") => Ok(value),
                _ => Err(value.text("error-reason").unwrap_or_else(|| format!("{value:?}"))),
            };
        }
        Err(format!("no reply from rtpengine at {}", self.server))
    }

    /// Sets up a call between `customer` and `agent` (PCMU + telephone-event), masks the
    /// customer's direction (`DTMF-security=silence`, `delay-buffer=40`, in-band detection
    /// forced on as research/rtpengine.md found necessary), and returns the ports the customer
    /// and the agent must send to.
    pub(crate) fn masked_call(
        &mut self,
        id: &str,
        customer: u16,
        agent: u16,
    ) -> Result<(u16, u16), String> {
        let sdp = |port: u16, session: &str| {
            format!(
                "v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
            )
        };
        let offer = self.call(&Value::dict(&[
            ("command", Value::str("offer")),
            ("call-id", Value::str(id)),
            ("from-tag", Value::str("customer")),
            ("sdp", Value::str(&sdp(customer, "1"))),
            ("replace", Value::List(vec![Value::str("origin")])),
            ("ICE", Value::str("remove")),
        ]))?;
        let answer = self.call(&Value::dict(&[
            ("command", Value::str("answer")),
            ("call-id", Value::str(id)),
            ("from-tag", Value::str("customer")),
            ("to-tag", Value::str("agent")),
            ("sdp", Value::str(&sdp(agent, "2"))),
            ("replace", Value::List(vec![Value::str("origin")])),
        ]))?;
        self.call(&Value::dict(&[
            ("command", Value::str("block DTMF")),
            ("call-id", Value::str(id)),
            ("from-tag", Value::str("customer")),
            ("flags", Value::List(vec![Value::str("directional"), Value::str("detect DTMF")])),
            ("DTMF-security", Value::str("silence")),
            ("delay-buffer", Value::Int(40)),
        ]))?;
        let port = |v: &Value| -> Result<u16, String> {
            let sdp = v.text("sdp").ok_or("reply without SDP (port range exhausted?)")?;
            sdp.lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| "no m=audio port in the SDP".to_string())
        };
        // The offer's SDP goes to the agent (where the agent sends); the answer's to the
        // customer.
        Ok((port(&answer)?, port(&offer)?))
    }

    pub(crate) fn delete(&mut self, id: &str) -> Result<(), String> {
        self.call(&Value::dict(&[("command", Value::str("delete")), ("call-id", Value::str(id))]))
            .map(|_| ())
    }
}
