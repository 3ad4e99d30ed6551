//! Agent → customer: passthrough, and the relay's own audio (IVR prompts) in its place.
//!
//! Agent packets keep their payload and are renumbered onto one continuous stream to the
//! customer: offsets on sequence number and timestamp that change only when the agent's
//! source changes or the relay's own audio was played in between, so the customer's jitter
//! buffer never sees a jump backwards.

use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;

use super::{Ctx, Events, MAX_SAMPLES, MediaEvent};
use crate::config::{Format, Leg, RemoteMedia, SocketKind};
use crate::prompt::{PlayOptions, Prompt, PromptEnd, PromptId};
use crate::rtp::{HEADER_LEN, Header, RtpPacket};

const SAMPLE_NANOS: u64 = 125_000;

/// The agent's current source and how it maps onto the customer's stream.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// The last packet sent to the customer.
#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u16,
    ts: u32,
    samples: u32,
    at: Instant,
}

#[derive(Clone, Debug)]
struct Playing {
    prompt: Prompt,
    at: usize,
    id: PromptId,
    barge_in: bool,
    first: bool,
}

#[derive(Debug)]
pub(crate) struct Downlink {
    ssrc: u32,
    mapping: Option<Mapping>,
    sent: Option<Sent>,
    /// The next agent packet starts a new mapping (the relay's own audio came in between).
    rebase: bool,
    playing: Option<Playing>,
    next_frame: Option<Instant>,
    next_id: u64,
    pcm: Box<[i16; MAX_SAMPLES]>,
    payload: Box<[u8; MAX_SAMPLES]>,
}

impl Downlink {
    /// `ssrc`: used until the agent sends anything (prompts before the agent answers).
    pub(crate) fn new(ssrc: u32) -> Downlink {
        Downlink {
            ssrc,
            mapping: None,
            sent: None,
            rebase: false,
            playing: None,
            next_frame: None,
            next_id: 1,
            pcm: Box::new([0; MAX_SAMPLES]),
            payload: Box::new([0; MAX_SAMPLES]),
        }
    }

    pub(crate) fn source_ssrc(&self) -> Option<u32> {
        self.mapping.map(|m| m.ssrc)
    }

    pub(crate) fn out_ssrc(&self) -> u32 {
        self.ssrc
    }

    /// An agent timestamp in the customer stream's terms.
    pub(crate) fn out_ts_of(&self, ts: u32) -> u32 {
        self.mapping.map_or(ts, |m| ts.wrapping_add(m.ts_offset))
    }

    pub(crate) fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    pub(crate) fn barge_in(&self) -> bool {
        self.playing.as_ref().is_some_and(|p| p.barge_in)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_frame
    }

    /// Where the next packet of a new stretch goes: right after the last one sent, or later
    /// by the wall-clock time since, so the customer's playout keeps real time.
    fn continue_at(&self, now: Instant) -> (u16, u32) {
        match self.sent {
            // Nothing sent yet: start somewhere unpredictable (RFC 3550 §5.1).
            None => (self.ssrc as u16, self.ssrc.rotate_left(16)),
            Some(s) => {
                let since =
                    now.saturating_duration_since(s.at).as_nanos() / u128::from(SAMPLE_NANOS);
                let since = u32::try_from(since).unwrap_or(u32::MAX) & !7;
                (s.seq.wrapping_add(1), s.ts.wrapping_add(s.samples.max(since)))
            }
        }
    }

    fn note_sent(&mut self, seq: u16, ts: u32, samples: u32, now: Instant) {
        match &mut self.sent {
            Some(s) if (seq.wrapping_sub(s.seq) as i16) <= 0 => {}
            sent => *sent = Some(Sent { seq, ts, samples, at: now }),
        }
    }

    /// Suspends passthrough: the next agent packet will start a new mapping.
    pub(crate) fn interrupt(&mut self) {
        self.rebase = true;
    }

    pub(crate) fn on_rtp(
        &mut self,
        cx: &mut Ctx<'_>,
        pkt: &RtpPacket<'_>,
        format: Format,
        customer: Option<&RemoteMedia>,
    ) {
        if cx.hold.is_some() || self.playing.is_some() {
            cx.metrics.masking.agent_audio_suppressed += 1;
            return;
        }
        let (Some(customer), Some(dest)) = (customer, cx.customer_rtp) else {
            cx.metrics.customer.unsent += 1;
            return;
        };
        let types = &customer.payload_types;
        let len = pkt.payload.len();
        let (payload_type, transcode) = match format {
            Format::Audio(codec) => match types.payload_type_of(codec) {
                Some(pt) => (pt, None),
                None => {
                    let (pt, send) = types.send_format();
                    (pt, Some((codec.law(), send.law())))
                }
            },
            Format::TelephoneEvent => match types.telephone_event {
                Some(pt) => (pt, None),
                None => {
                    cx.metrics.customer.unsent += 1;
                    return;
                }
            },
        };
        if len > MAX_SAMPLES && transcode.is_some() {
            cx.metrics.agent.malformed += 1;
            return;
        }
        let mut marker = pkt.marker;
        let mapping = match self.mapping {
            Some(m) if m.ssrc == pkt.ssrc && !self.rebase => m,
            previous => {
                if previous.is_some_and(|m| m.ssrc != pkt.ssrc) {
                    cx.metrics.agent.source_changes += 1;
                }
                let (seq, ts) = match self.sent {
                    None => (pkt.sequence, pkt.timestamp),
                    Some(_) => self.continue_at(cx.now),
                };
                if self.sent.is_none() {
                    self.ssrc = pkt.ssrc;
                }
                let m = Mapping {
                    ssrc: pkt.ssrc,
                    seq_offset: seq.wrapping_sub(pkt.sequence),
                    ts_offset: ts.wrapping_sub(pkt.timestamp),
                };
                self.mapping = Some(m);
                self.rebase = false;
                marker = true;
                m
            }
        };
        let header = Header {
            marker,
            payload_type,
            sequence: pkt.sequence.wrapping_add(mapping.seq_offset),
            timestamp: pkt.timestamp.wrapping_add(mapping.ts_offset),
            ssrc: self.ssrc,
        };
        if matches!(format, Format::Audio(_)) {
            self.note_sent(header.sequence, header.timestamp, len as u32, cx.now);
        }
        let payload: &[u8] = match transcode {
            None => pkt.payload,
            Some((from, to)) => {
                let pcm = &mut self.pcm[..len];
                from.decode_slice(pkt.payload, pcm);
                to.encode_slice(pcm, &mut self.payload[..len]);
                &self.payload[..len]
            }
        };
        send(cx, dest, &header, payload);
    }

    pub(crate) fn play(
        &mut self,
        now: Instant,
        prompt: Prompt,
        options: PlayOptions,
        events: &mut Events,
    ) -> PromptId {
        self.stop(events, PromptEnd::Replaced);
        let id = PromptId(self.next_id);
        self.next_id += 1;
        self.playing = Some(Playing { prompt, at: 0, id, barge_in: options.barge_in, first: true });
        self.next_frame = Some(now);
        id
    }

    pub(crate) fn stop(&mut self, events: &mut Events, end: PromptEnd) {
        if let Some(p) = self.playing.take() {
            events.push(MediaEvent::PromptEnded { id: p.id, end });
            self.rebase = true;
        }
        self.next_frame = None;
    }

    /// Sends the prompt frames that are due.
    pub(crate) fn on_timeout(&mut self, cx: &mut Ctx<'_>, customer: Option<&RemoteMedia>) {
        while let Some(due) = self.next_frame.filter(|&t| t <= cx.now) {
            let frame = customer.map_or(160, RemoteMedia::ptime_samples).min(MAX_SAMPLES);
            let (payload_type, law) = customer.map_or((0, Law::Ulaw), |c| {
                let (pt, codec) = c.payload_types.send_format();
                (pt, codec.law())
            });
            let Some(playing) = self.playing.as_mut() else {
                self.next_frame = None;
                break;
            };
            let samples = playing.prompt.samples();
            let n = frame.min(samples.len() - playing.at);
            if n == 0 {
                self.stop(cx.events, PromptEnd::Completed);
                break;
            }
            let pcm = &samples[playing.at..playing.at + n];
            playing.at += n;
            let first = std::mem::replace(&mut playing.first, false);
            law.encode_slice(pcm, &mut self.payload[..n]);
            let (sequence, timestamp) = match (self.sent, first) {
                (Some(s), false) => (s.seq.wrapping_add(1), s.ts.wrapping_add(s.samples)),
                _ => self.continue_at(cx.now),
            };
            let header =
                Header { marker: first, payload_type, sequence, timestamp, ssrc: self.ssrc };
            self.note_sent(sequence, timestamp, n as u32, cx.now);
            cx.metrics.masking.prompt_frames += 1;
            match cx.customer_rtp {
                Some(dest) => send(cx, dest, &header, &self.payload[..n]),
                None => cx.metrics.customer.unsent += 1,
            }
            self.next_frame = Some(due + Duration::from_nanos(frame as u64 * SAMPLE_NANOS));
            if self.playing.as_ref().is_some_and(|p| p.at == p.prompt.samples().len()) {
                self.stop(cx.events, PromptEnd::Completed);
            }
        }
    }
}

fn send(cx: &mut Ctx<'_>, dest: std::net::SocketAddr, header: &Header, payload: &[u8]) {
    let size = HEADER_LEN + payload.len();
    let queued = cx.tx.push(Leg::Customer, SocketKind::Rtp, dest, size, |out| {
        header.write(out);
        out[HEADER_LEN..size].copy_from_slice(payload);
        size
    });
    if queued {
        cx.metrics.customer.rtp_packets_out += 1;
        cx.metrics.customer.rtp_bytes_out += size as u64;
    } else {
        cx.metrics.customer.unsent += 1;
    }
}
