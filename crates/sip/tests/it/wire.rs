//! Parsing, printing and SDP rewriting.

use bytes::Bytes;
use ivrpay_sip::message::{self, Message, ParseError, frame_length, tag_param, with_tag};
use ivrpay_sip::sdp::{self, CodecPolicy, LocalSdp};

#[test]
fn tags_are_found_and_replaced_in_any_form() {
    for (value, tag) in [
        ("\"Bob\" <sip:bob@example.com;transport=tcp>;tag=abc;x=1", Some("abc")),
        ("<sip:bob@example.com;tag=notmine>", None),
        ("sip:bob@example.com;tag=xyz", Some("xyz")),
        ("<tel:+441234>;TAG=t1", Some("t1")),
        ("<sip:bob@example.com>", None),
    ] {
        let v = bytesstr::BytesStr::from(value.to_owned());
        assert_eq!(tag_param(&v).as_deref(), tag, "{value}");
        let replaced = with_tag(value, "new");
        assert_eq!(
            tag_param(&bytesstr::BytesStr::from(replaced.clone())).as_deref(),
            Some("new"),
            "{replaced}"
        );
        assert_eq!(
            replaced.matches("tag=").count(),
            1 + usize::from(value.contains("tag=notmine")),
            "{replaced}"
        );
    }
}

#[test]
fn messages_round_trip_and_compact_headers_are_understood() {
    let text = "INVITE sip:pay@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:pay@127.0.0.1>\r\ni: abc@host\r\nCSeq: 7 INVITE\r\nl: 4\r\n\r\nbody";
    let Message::Request(r) = message::parse(Bytes::from(text)).expect("parses") else {
        panic!("request")
    };
    let e = r.essentials().expect("essentials");
    assert_eq!(e.call_id.as_str(), "abc@host");
    assert_eq!(e.cseq.cseq, 7);
    assert_eq!(e.branch(), "z9hG4bK1");
    assert_eq!(&r.body[..], b"body");
    let mut out = bytes::BytesMut::new();
    r.encode(&mut out);
    let Message::Request(again) = message::parse(out.freeze()).expect("re-parses") else {
        panic!("request")
    };
    assert_eq!(again.essentials().expect("essentials").call_id.as_str(), "abc@host");
    assert_eq!(&again.body[..], b"body");
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    assert!(matches!(message::parse(Bytes::from_static(b"")), Err(ParseError::BadStartLine)));
    assert!(matches!(
        message::parse(Bytes::from_static(b"HELLO\r\n\r\n")),
        Err(ParseError::BadStartLine)
    ));
    assert!(matches!(
        message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc"
        )),
        Err(ParseError::ShortBody { declared: 10, available: 3 })
    ));
    // A corpus of broken messages: every prefix of a valid message, and random bytes.
    let valid = "INVITE sip:pay@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:pay@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    for end in 0..valid.len() {
        let _ = message::parse(Bytes::from(valid[..end].to_owned()));
        let _ = frame_length(&valid.as_bytes()[..end]);
    }
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 300) as usize;
        let mut bytes: Vec<u8> = valid.as_bytes().to_vec();
        bytes.truncate(len.max(1).min(bytes.len()));
        for i in 0..8 {
            let at = ((seed >> (i * 8)) as usize) % bytes.len();
            bytes[at] = (seed >> (i * 3)) as u8;
        }
        if let Ok(Message::Request(r)) = message::parse(Bytes::from(bytes)) {
            let _ = r.essentials();
        }
    }
}

#[test]
fn stream_framing_needs_content_length() {
    let one = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
    let two = format!("{one}{one}");
    assert_eq!(frame_length(two.as_bytes()).expect("valid"), Some(one.len()));
    assert_eq!(frame_length(&one.as_bytes()[..one.len() - 1]).expect("valid"), None);
    assert!(
        frame_length(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").is_err(),
        "no Content-Length on a stream"
    );
}

#[test]
fn sdp_rewrite_keeps_what_matters() {
    let offer = crate::sim::OFFER.replace('\n', "\r\n");
    let parsed = sdp::parse(&Bytes::from(offer)).expect("sdp");
    let info = sdp::stream_info(&parsed).expect("audio");
    assert_eq!(info.telephone_event, Some(101));
    assert_eq!(info.ptime, Some(20));
    assert_eq!(info.codecs.len(), 2, "G729 is not a codec the relay takes");
    let mut local = LocalSdp::new("192.0.2.1:40000".parse().expect("addr"), 99);
    let out = sdp::rewrite(&parsed, &mut local, &CodecPolicy::default()).expect("rewrite");
    let out = String::from_utf8(out.to_vec()).expect("utf-8");
    assert!(out.contains("c=IN IP4 192.0.2.1"), "{out}");
    assert!(out.contains("m=audio 40000 RTP/AVP 0 8 101"), "{out}");
    assert!(
        out.contains("a=fmtp:101 0-16")
            && out.contains("a=ptime:20")
            && out.contains("a=rtcp:40001"),
        "{out}"
    );
    assert!(!out.contains("127.0.0.1") && !out.contains("G729"), "{out}");
    let second = sdp::rewrite(&parsed, &mut local, &CodecPolicy::default()).expect("rewrite");
    assert!(String::from_utf8_lossy(&second).contains("o=ivrpay 99 2 IN IP4"), "the version grows");
    // PCMA only, no telephone-event.
    let policy = CodecPolicy { codecs: vec![sdp::Codec::Pcma], telephone_event: false };
    let out = sdp::rewrite(&parsed, &mut local, &policy).expect("rewrite");
    assert!(String::from_utf8_lossy(&out).contains("m=audio 40000 RTP/AVP 8\r\n"));
}
