//! Customer → agent: decode, detect, hold back, mask, encode, send.
//!
//! The masker consumes one continuous 8 kHz stream, indexed by *position* (samples since
//! the call's first customer packet). Packets map onto positions through their RTP
//! timestamps; a gap between packets (loss, silence suppression, telephone-events) is fed
//! to the masker as missing samples, so the detector knows and the timeline stays whole.
//! The masker's output is the input `lookahead` samples later; every call writes as many
//! samples as it consumed, and what comes out is cut into packets for the agent:
//!
//! - positions the customer never sent (lost or suppressed) are not sent on: the agent's
//!   jitter buffer sees the same gap (sequence numbers skip where packets were lost, the
//!   timestamp jumps where the sender was silent);
//! - positions covered by a telephone-event are sent as the profile's replacement audio;
//! - everything else leaves with its original G.711 codes unless the masker replaced it.
//!
//! The agent's stream keeps the first customer source's SSRC, sequence numbers and
//! timestamps while nothing is removed, so an unmasked call is relayed packet for packet;
//! after a new source, a restart or removed events it continues from its own counters.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::rfc4733::{self, EventTracker, TrackerEvent};
use ivrpay_dtmf::{DetectorEvent, Digit, Masker, MaskerConfig, MaskerEvent, Replacement};

use super::delay::Delay;
use super::digits::DigitSource;
use super::seq::{SeqCheck, SeqWindow};
use super::{Ctx, MAX_SAMPLES};
use crate::config::{Codec, Format, Leg, MediaProfile, SocketKind};
use crate::rtp::{HEADER_LEN, Header, RtpPacket};

/// Silences longer than this are shortened in the masker's timeline (the output timestamps
/// still jump by the real length): a gap only needs to flush the lookahead and end a digit.
const MAX_FILL: u64 = 2000;
/// While a telephone-event lasts, its replacement runs this far past the last reported
/// duration, so the agent hears no sliver of the key between two updates.
const EVENT_SLACK: u64 = 320;
/// Customer packets held waiting for a missing one.
const HELD_MAX: usize = 4;
/// How often an unfinished telephone-event is checked for a lost end.
const TRACKER_POLL: Duration = Duration::from_millis(50);
/// The tracker ends an event whose updates stopped this many timestamp units ago.
const TRACKER_FORCE_END: u32 = 1_000_000;
const SAMPLE_NANOS: u64 = 125_000;

fn samples_in(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / u128::from(SAMPLE_NANOS)).unwrap_or(u64::MAX)
}

fn duration_of(samples: usize) -> Duration {
    Duration::from_nanos(samples as u64 * SAMPLE_NANOS)
}

/// The customer's current RTP source.
#[derive(Clone, Copy, Debug)]
struct Source {
    ssrc: u32,
    seq: SeqWindow,
    /// Position of timestamp `ts_ref`.
    ts_ref: u32,
    pos_ref: u64,
    last_arrival: Instant,
}

impl Source {
    fn pos_of(&self, ts: u32) -> i64 {
        self.pos_ref as i64 + i64::from(ts.wrapping_sub(self.ts_ref) as i32)
    }
}

/// Positions `start..end` covered by a telephone-event.
#[derive(Clone, Copy, Debug)]
struct Forced {
    start: u64,
    end: u64,
    /// `end` is final (an end report arrived).
    ended: bool,
}

/// Positions `start..end` not to send.
#[derive(Clone, Copy, Debug)]
struct Skip {
    start: u64,
    end: u64,
}

/// A packet waiting for the one before it.
#[derive(Clone, Debug)]
struct Held {
    pos: u64,
    law: Law,
    missing: u16,
    ts: u32,
    len: usize,
    data: [u8; MAX_SAMPLES],
}

#[derive(Debug)]
struct Scratch {
    pcm_in: [i16; MAX_SAMPLES],
    codes_in: [u8; MAX_SAMPLES],
    pcm_out: [i16; MAX_SAMPLES],
    dpcm: [i16; MAX_SAMPLES],
    dcodes: [u8; MAX_SAMPLES],
    payload: [u8; MAX_SAMPLES],
}

#[derive(Debug)]
pub(crate) struct Uplink {
    lookahead: usize,
    reorder_window: Duration,
    flush_after: Duration,
    masker: Masker,
    /// Replacement audio for telephone-events.
    replacement: Replacement,
    delay: Delay,
    /// The law of the codes in `delay` (the agent leg's codec when they went in).
    delay_law: Law,
    source: Option<Source>,
    tracker: EventTracker,
    /// Latest end (timestamp) of a key event fed to the tracker.
    tracker_end: u32,
    /// Position of the next input sample: what the masker has consumed.
    next_pos: u64,
    /// Samples the masker has written.
    written: u64,
    ts_origin: u32,
    /// Samples of silence cut out of the masker's timeline; added back to output timestamps.
    ts_shift: u64,
    skips: VecDeque<Skip>,
    forced: VecDeque<Forced>,
    out_ssrc: u32,
    out_seq: u16,
    /// Sequence numbers lost by the customer since the last packet sent to the agent.
    pending_seq_skip: u32,
    /// Positions not sent since the last packet sent to the agent.
    skipped_since_emit: u64,
    marker_next: bool,
    /// Samples in the customer's latest audio packet.
    last_samples: usize,
    held: Vec<Held>,
    held_deadline: Option<Instant>,
    flush_at: Option<Instant>,
    tracker_check_at: Option<Instant>,
    buf: Box<Scratch>,
}

impl Uplink {
    pub(crate) fn new(profile: &MediaProfile, law: Law) -> Uplink {
        let lookahead = profile.lookahead_samples();
        let masker = Masker::new(MaskerConfig {
            mode: profile.mask_mode,
            lookahead,
            ..MaskerConfig::default()
        });
        Uplink {
            lookahead,
            reorder_window: Duration::from_millis(u64::from(profile.reorder_window_ms)),
            flush_after: Duration::from_millis(u64::from(profile.flush_after_ms)),
            masker,
            replacement: Replacement::new(profile.mask_mode),
            delay: Delay::new(lookahead, law),
            delay_law: law,
            source: None,
            tracker: EventTracker::new(),
            tracker_end: 0,
            next_pos: 0,
            written: 0,
            ts_origin: 0,
            ts_shift: 0,
            skips: VecDeque::with_capacity(16),
            forced: VecDeque::with_capacity(8),
            out_ssrc: 0,
            out_seq: 0,
            pending_seq_skip: 0,
            skipped_since_emit: 0,
            marker_next: true,
            last_samples: 160,
            held: Vec::with_capacity(HELD_MAX),
            held_deadline: None,
            flush_at: None,
            tracker_check_at: None,
            buf: Box::new(Scratch {
                pcm_in: [0; MAX_SAMPLES],
                codes_in: [0; MAX_SAMPLES],
                pcm_out: [0; MAX_SAMPLES],
                dpcm: [0; MAX_SAMPLES],
                dcodes: [0; MAX_SAMPLES],
                payload: [0; MAX_SAMPLES],
            }),
        }
    }

    /// The customer's current SSRC.
    pub(crate) fn source_ssrc(&self) -> Option<u32> {
        self.source.map(|s| s.ssrc)
    }

    /// The SSRC of the stream sent to the agent.
    pub(crate) fn out_ssrc(&self) -> Option<u32> {
        self.source.map(|_| self.out_ssrc)
    }

    /// A customer timestamp in the agent stream's terms.
    pub(crate) fn out_ts_of(&self, ts: u32) -> u32 {
        match &self.source {
            Some(s) => self.out_ts(s.pos_of(ts)),
            None => ts,
        }
    }

    fn out_ts(&self, pos: i64) -> u32 {
        (i64::from(self.ts_origin) + pos + self.ts_shift as i64) as u32
    }

    /// The agent leg's codec changed: re-encode what the lookahead holds.
    pub(crate) fn set_out_law(&mut self, law: Law) {
        if law != self.delay_law {
            self.delay.recode(law);
            self.delay_law = law;
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.held_deadline, self.flush_at, self.tracker_check_at].into_iter().flatten().min()
    }

    pub(crate) fn on_rtp(&mut self, cx: &mut Ctx<'_>, pkt: &RtpPacket<'_>, format: Format) {
        let len = pkt.payload.len();
        let oversize = matches!(format, Format::Audio(_)) && len > MAX_SAMPLES;
        if len == 0 || oversize {
            cx.metrics.customer.malformed += 1;
            return;
        }
        let Some((missing, fresh)) = self.admit(cx, pkt) else { return };
        match format {
            Format::Audio(codec) => self.on_audio(cx, pkt, codec, missing, fresh),
            Format::TelephoneEvent => self.on_event(cx, pkt),
        }
    }

    /// Sequence and source bookkeeping. `None`: drop the packet.
    fn admit(&mut self, cx: &mut Ctx<'_>, pkt: &RtpPacket<'_>) -> Option<(u16, bool)> {
        let Some(source) = self.source.as_mut().filter(|s| s.ssrc == pkt.ssrc) else {
            self.change_source(cx, pkt);
            return Some((0, true));
        };
        match source.seq.check(pkt.sequence) {
            SeqCheck::New { missing } => {
                cx.metrics.customer.lost += u64::from(missing);
                Some((missing, true))
            }
            SeqCheck::Reordered => {
                // Counted as lost when the packets after it came.
                cx.metrics.customer.lost = cx.metrics.customer.lost.saturating_sub(1);
                Some((0, false))
            }
            SeqCheck::Duplicate => {
                cx.metrics.customer.duplicates += 1;
                None
            }
            SeqCheck::Stray => {
                cx.metrics.customer.late += 1;
                None
            }
            SeqCheck::Restart => {
                self.rebase(cx, pkt);
                Some((0, true))
            }
        }
    }

    /// A new SSRC: the previous source is finished and the new one continues the timeline.
    fn change_source(&mut self, cx: &mut Ctx<'_>, pkt: &RtpPacket<'_>) {
        if self.source.is_none() {
            self.ts_origin = pkt.timestamp;
            self.out_ssrc = pkt.ssrc;
            self.out_seq = pkt.sequence;
            self.source = Some(Source {
                ssrc: pkt.ssrc,
                seq: SeqWindow::new(pkt.sequence),
                ts_ref: pkt.timestamp,
                pos_ref: 0,
                last_arrival: cx.now,
            });
            return;
        }
        cx.metrics.customer.source_changes += 1;
        self.rebase(cx, pkt);
    }

    /// Maps `pkt` to the position after whatever the previous source (or numbering) left,
    /// plus the wall-clock time since its last packet if the line went quiet meanwhile.
    fn rebase(&mut self, cx: &mut Ctx<'_>, pkt: &RtpPacket<'_>) {
        self.release_held(cx, true);
        self.end_tracker(cx);
        let mut pos = self.next_pos;
        if let Some(old) = &self.source {
            // Whole packets' worth of time that passed without audio since the last one.
            let n = self.last_samples.max(1) as u64;
            let quiet =
                samples_in(cx.now.saturating_duration_since(old.last_arrival)).saturating_sub(n);
            pos += (quiet + n / 2) / n * n;
        }
        self.source = Some(Source {
            ssrc: pkt.ssrc,
            seq: SeqWindow::new(pkt.sequence),
            ts_ref: pkt.timestamp,
            pos_ref: pos,
            last_arrival: cx.now,
        });
        self.tracker = EventTracker::new();
        self.marker_next = true;
    }

    fn on_audio(
        &mut self,
        cx: &mut Ctx<'_>,
        pkt: &RtpPacket<'_>,
        codec: Codec,
        missing: u16,
        fresh: bool,
    ) {
        let Some(source) = self.source.as_mut() else { return };
        source.last_arrival = cx.now;
        let mut pos = source.pos_of(pkt.timestamp);
        let behind = self.next_pos as i64 - pos;
        if fresh && behind > (self.lookahead + MAX_SAMPLES) as i64 {
            // A new packet far in the past: the sender reset its timestamps.
            self.rebase(cx, pkt);
            pos = self.source.map_or(self.next_pos as i64, |s| s.pos_of(pkt.timestamp));
        }
        if pos < self.next_pos as i64 {
            cx.metrics.customer.late += 1;
            return;
        }
        let pos = pos as u64;
        let law = codec.law();
        let waits = pos > self.next_pos && (missing > 0 || !self.held.is_empty());
        if waits && !self.reorder_window.is_zero() {
            if self.hold(cx, pos, pkt, law, missing) {
                return;
            }
            if pos < self.next_pos {
                cx.metrics.customer.late += 1;
                return;
            }
        }
        self.process_audio(cx, pos, pkt.payload, law, missing, pkt.timestamp);
        self.release_held(cx, false);
    }

    /// Holds a packet that came after a gap. False if it could not be held (the buffer was
    /// full and has been released).
    fn hold(
        &mut self,
        cx: &mut Ctx<'_>,
        pos: u64,
        pkt: &RtpPacket<'_>,
        law: Law,
        missing: u16,
    ) -> bool {
        if self.held.len() == HELD_MAX {
            self.release_held(cx, true);
            return false;
        }
        let at = self.held.partition_point(|h| h.pos < pos);
        if self.held.get(at).is_some_and(|h| h.pos == pos) {
            cx.metrics.customer.duplicates += 1;
            return true;
        }
        let mut held = Held {
            pos,
            law,
            missing,
            ts: pkt.timestamp,
            len: pkt.payload.len(),
            data: [0; MAX_SAMPLES],
        };
        held.data[..held.len].copy_from_slice(pkt.payload);
        self.held.insert(at, held);
        if self.held_deadline.is_none() {
            self.held_deadline = Some(cx.now + self.reorder_window);
        }
        true
    }

    /// Processes held packets that are next in line, or all of them when `force`.
    fn release_held(&mut self, cx: &mut Ctx<'_>, force: bool) {
        while let Some(first) = self.held.first() {
            if first.pos < self.next_pos {
                self.held.remove(0);
                cx.metrics.customer.late += 1;
                continue;
            }
            if first.pos != self.next_pos && !force {
                break;
            }
            let h = self.held.remove(0);
            self.process_audio(cx, h.pos, &h.data[..h.len], h.law, h.missing, h.ts);
        }
        if self.held.is_empty() {
            self.held_deadline = None;
        }
    }

    fn process_audio(
        &mut self,
        cx: &mut Ctx<'_>,
        pos: u64,
        payload: &[u8],
        law: Law,
        missing: u16,
        ts: u32,
    ) {
        if pos > self.next_pos {
            self.fill_gap(cx, pos, missing);
        }
        let n = payload.len();
        let out_law = cx.agent_law;
        self.set_out_law(out_law);
        let buf = &mut *self.buf;
        law.decode_slice(payload, &mut buf.pcm_in[..n]);
        if law == out_law {
            buf.codes_in[..n].copy_from_slice(payload);
        } else {
            out_law.encode_slice(&buf.pcm_in[..n], &mut buf.codes_in[..n]);
        }
        self.masker.process(&buf.pcm_in[..n], &mut buf.pcm_out[..n]);
        self.delay.push(
            &buf.pcm_in[..n],
            &buf.codes_in[..n],
            &mut buf.dpcm[..n],
            &mut buf.dcodes[..n],
        );
        let out_start = self.written as i64 - self.lookahead as i64;
        self.written += n as u64;
        self.next_pos += n as u64;
        if let Some(source) = self.source.as_mut() {
            source.ts_ref = ts;
            source.pos_ref = self.next_pos - n as u64;
        }
        self.emit(cx, out_start, n);
        self.masker_events(cx);
        self.last_samples = n;
        self.flush_at = Some(cx.now + duration_of(n) + self.flush_after);
        if self.tracker.is_active() {
            self.tracker.expire(ts);
            self.tracker_events(cx);
        }
    }

    /// Feeds the masker the missing positions `next_pos..to`.
    fn fill_gap(&mut self, cx: &mut Ctx<'_>, to: u64, missing: u16) {
        let from = self.next_pos;
        let mut to = to;
        // The part before the first telephone-event is silence; shorten it if long.
        let covered_from = self
            .forced
            .iter()
            .filter(|f| f.end > from && f.start < to)
            .map(|f| f.start.max(from))
            .min()
            .unwrap_or(to);
        let quiet = covered_from - from;
        if quiet > MAX_FILL {
            let cut = quiet - MAX_FILL;
            self.shift(from, cut);
            to -= cut;
        }
        self.add_skips(from, to);
        self.pending_seq_skip += u32::from(missing);
        let out_law = cx.agent_law;
        self.set_out_law(out_law);
        let silence = out_law.encode(0);
        while self.next_pos < to {
            let k = ((to - self.next_pos) as usize).min(MAX_SAMPLES);
            let buf = &mut *self.buf;
            buf.pcm_in[..k].fill(0);
            buf.codes_in[..k].fill(silence);
            self.masker.fill_in(k, &mut buf.pcm_out[..k]);
            self.delay.push(
                &buf.pcm_in[..k],
                &buf.codes_in[..k],
                &mut buf.dpcm[..k],
                &mut buf.dcodes[..k],
            );
            let out_start = self.written as i64 - self.lookahead as i64;
            self.written += k as u64;
            self.next_pos += k as u64;
            self.emit(cx, out_start, k);
            self.masker_events(cx);
        }
    }

    /// Cuts `cut` samples of silence at `from` out of the timeline.
    fn shift(&mut self, from: u64, cut: u64) {
        if let Some(s) = self.source.as_mut() {
            s.pos_ref = s.pos_ref.saturating_sub(cut);
        }
        for f in self.forced.iter_mut().filter(|f| f.start >= from) {
            f.start -= cut;
            f.end -= cut;
        }
        for h in self.held.iter_mut().filter(|h| h.pos >= from) {
            h.pos -= cut;
        }
        self.ts_shift += cut;
    }

    /// Marks `from..to` as not to be sent, except where a telephone-event covers it.
    fn add_skips(&mut self, from: u64, to: u64) {
        let mut cursor = from;
        let mut pieces = [(0u64, 0u64); 9];
        let mut count = 0;
        for f in self.forced.iter().filter(|f| f.end > from && f.start < to) {
            if f.start > cursor && count < pieces.len() - 1 {
                pieces[count] = (cursor, f.start);
                count += 1;
            }
            cursor = cursor.max(f.end);
        }
        if cursor < to {
            pieces[count] = (cursor, to);
            count += 1;
        }
        for &(start, end) in &pieces[..count] {
            let full = self.skips.len() == self.skips.capacity();
            match self.skips.back_mut() {
                Some(last) if last.end >= start => last.end = last.end.max(end),
                Some(last) if full => last.end = end,
                _ => self.skips.push_back(Skip { start, end }),
            }
        }
    }

    /// Sends the masker's latest output, `len` samples for positions from `out_start`.
    fn emit(&mut self, cx: &mut Ctx<'_>, out_start: i64, len: usize) {
        let end = out_start + len as i64;
        let mut cursor = out_start.max(0);
        while cursor < end {
            while self.skips.front().is_some_and(|s| (s.end as i64) <= cursor) {
                self.skips.pop_front();
            }
            match self.skips.front().copied() {
                Some(s) if (s.start as i64) <= cursor => {
                    let stop = (s.end as i64).min(end);
                    self.skipped_since_emit += (stop - cursor) as u64;
                    cursor = stop;
                }
                next => {
                    let stop = next.map_or(end, |s| (s.start as i64).min(end));
                    let (a, b) = ((cursor - out_start) as usize, (stop - out_start) as usize);
                    self.emit_segment(cx, a, b, cursor as u64);
                    cursor = stop;
                }
            }
        }
        while self.forced.front().is_some_and(|f| (f.end as i64) <= end && f.ended) {
            self.forced.pop_front();
        }
    }

    /// Sends output samples `a..b` (position `pos` onwards) as one packet.
    fn emit_segment(&mut self, cx: &mut Ctx<'_>, a: usize, b: usize, pos: u64) {
        let len = b - a;
        let end = pos + len as u64;
        let timestamp = self.out_ts(pos as i64);
        let buf = &mut *self.buf;
        let pcm = &mut buf.pcm_out[a..b];
        let mut forced = false;
        for f in self.forced.iter().filter(|f| f.start < end && f.end > pos) {
            let (lo, hi) = (f.start.max(pos), f.end.min(end));
            if lo == f.start {
                self.replacement.restart();
            }
            let until_end = if f.ended { f.end - lo } else { u64::MAX };
            let span = &mut pcm[(lo - pos) as usize..(hi - pos) as usize];
            self.replacement.fill(span, lo - f.start, until_end);
            forced = true;
        }
        let (dpcm, dcodes) = (&buf.dpcm[a..b], &buf.dcodes[a..b]);
        let payload = &mut buf.payload[..len];
        let out_law = self.delay_law;
        let masked = if let Some(hold) = cx.hold.as_deref_mut() {
            hold.fill(pcm);
            out_law.encode_slice(pcm, payload);
            cx.metrics.masking.hold_frames += 1;
            forced
        } else if !forced && *pcm == *dpcm {
            payload.copy_from_slice(dcodes);
            false
        } else {
            let mut replaced = forced;
            for i in 0..len {
                payload[i] = if pcm[i] == dpcm[i] {
                    dcodes[i]
                } else {
                    replaced = true;
                    out_law.encode(pcm[i])
                };
            }
            replaced
        };
        let mut skipped_seq = 0;
        if self.skipped_since_emit > 0 && self.pending_seq_skip > 0 {
            let chunks = self.skipped_since_emit.div_ceil(self.last_samples.max(1) as u64);
            skipped_seq = u64::from(self.pending_seq_skip).min(chunks) as u16;
            self.out_seq = self.out_seq.wrapping_add(skipped_seq);
        }
        let marker = self.marker_next || (self.skipped_since_emit > 0 && skipped_seq == 0);
        let header = Header {
            marker,
            payload_type: cx.agent_pt,
            sequence: self.out_seq,
            timestamp,
            ssrc: self.out_ssrc,
        };
        self.out_seq = self.out_seq.wrapping_add(1);
        self.marker_next = false;
        self.skipped_since_emit = 0;
        self.pending_seq_skip = 0;
        if masked {
            cx.metrics.masking.masked_frames += 1;
        }
        let size = HEADER_LEN + len;
        let queued = cx.agent_rtp.is_some_and(|dest| {
            cx.tx.push(Leg::Agent, SocketKind::Rtp, dest, size, |out| {
                header.write(out);
                out[HEADER_LEN..size].copy_from_slice(payload);
                size
            })
        });
        if queued {
            cx.metrics.agent.rtp_packets_out += 1;
            cx.metrics.agent.rtp_bytes_out += size as u64;
        } else {
            cx.metrics.agent.unsent += 1;
        }
    }

    fn masker_events(&mut self, cx: &mut Ctx<'_>) {
        while let Some(event) = self.masker.poll_event() {
            match event {
                MaskerEvent::Digit(DetectorEvent::Began { digit, start }) => {
                    let shift = self.ts_shift;
                    cx.events.began(cx.metrics, cx.now, DigitSource::InBand, digit, start, shift);
                }
                MaskerEvent::Digit(DetectorEvent::Ended(tone)) => {
                    let press = (tone.start, tone.end);
                    cx.events.ended(cx.now, DigitSource::InBand, tone.digit, press, self.ts_shift);
                }
                MaskerEvent::Masked(span) => cx.metrics.masking.masked_samples += span.len(),
            }
        }
    }

    fn on_event(&mut self, cx: &mut Ctx<'_>, pkt: &RtpPacket<'_>) {
        cx.metrics.masking.events_consumed += 1;
        if self.tracker.handle(pkt.timestamp, pkt.marker, pkt.payload).is_err() {
            cx.metrics.customer.malformed += 1;
            return;
        }
        let Some(source) = self.source else { return };
        let Ok(reports) = rfc4733::parse_payload(pkt.payload) else { return };
        let mut at = pkt.timestamp;
        let mut covered = 0u64;
        for report in reports {
            let duration = u32::from(report.duration);
            if Digit::from_event_code(report.event).is_some() {
                let start = source.pos_of(at);
                if start >= 0 {
                    let (start, end) = (start as u64, start as u64 + u64::from(duration));
                    self.add_forced(start, end, report.end);
                    covered = covered.max(end);
                }
                let event_end = at.wrapping_add(duration);
                if event_end.wrapping_sub(self.tracker_end) as i32 > 0 {
                    self.tracker_end = event_end;
                }
            }
            at = at.wrapping_add(duration);
        }
        self.tracker_events(cx);
        self.tracker_check_at = Some(cx.now + TRACKER_POLL);
        // A sender that sends only events during a key press: the agent hears the
        // replacement at the pace of the events (one packet behind, in case the audio of
        // the same instant is on its way too).
        if self.held.is_empty() && covered > self.next_pos + self.last_samples as u64 {
            self.fill_gap(cx, covered, 0);
            self.flush_at = Some(cx.now + duration_of(self.last_samples) + self.flush_after);
        }
    }

    fn add_forced(&mut self, start: u64, end: u64, ended: bool) {
        let end_of = |end: u64, ended: bool| if ended { end } else { end + EVENT_SLACK };
        if let Some(f) = self.forced.iter_mut().find(|f| f.start == start) {
            if !f.ended {
                f.end = if ended { end } else { f.end.max(end_of(end, false)) };
                f.ended = ended;
            }
            return;
        }
        if self.forced.len() == self.forced.capacity() {
            self.forced.pop_front();
        }
        let at = self.forced.partition_point(|f| f.start < start);
        self.forced.insert(at, Forced { start, end: end_of(end, ended), ended });
    }

    fn tracker_events(&mut self, cx: &mut Ctx<'_>) {
        let Some(source) = self.source else { return };
        while let Some(event) = self.tracker.poll_event() {
            match event {
                TrackerEvent::Began { digit, timestamp } => {
                    let start = source.pos_of(timestamp).max(0) as u64;
                    let shift = self.ts_shift;
                    cx.events.began(cx.metrics, cx.now, DigitSource::Rfc4733, digit, start, shift);
                }
                TrackerEvent::Ended { digit, timestamp, duration } => {
                    let start = source.pos_of(timestamp).max(0) as u64;
                    let end = start + u64::from(duration);
                    cx.events.ended(
                        cx.now,
                        DigitSource::Rfc4733,
                        digit,
                        (start, end),
                        self.ts_shift,
                    );
                    // The key is over: its replacement ends where the event did.
                    if let Some(f) = self.forced.iter_mut().find(|f| f.start == start && !f.ended) {
                        f.end =
                            end.max(self.written.saturating_sub(self.lookahead as u64)).min(f.end);
                        f.ended = true;
                    }
                }
            }
        }
    }

    /// Ends a telephone-event whose end was never received.
    fn end_tracker(&mut self, cx: &mut Ctx<'_>) {
        if self.tracker.is_active() {
            self.tracker.expire(self.tracker_end.wrapping_add(TRACKER_FORCE_END));
            self.tracker_events(cx);
        }
    }

    pub(crate) fn on_timeout(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        if self.held_deadline.is_some_and(|t| t <= now) {
            self.release_held(cx, true);
        }
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush_at = None;
            if self.held.is_empty() && self.lookahead > 0 {
                // The customer went quiet: send what the lookahead holds.
                self.fill_gap(cx, self.next_pos + self.lookahead as u64, 0);
            }
        }
        if self.tracker_check_at.is_some_and(|t| t <= now) {
            self.tracker_check_at = None;
            if self.tracker.is_active() {
                if let Some(source) = self.source {
                    let quiet = samples_in(now.saturating_duration_since(source.last_arrival));
                    let pos_now = self.next_pos + quiet;
                    let ts_now = source.ts_ref.wrapping_add((pos_now - source.pos_ref) as u32);
                    self.tracker.expire(ts_now);
                    self.tracker_events(cx);
                }
                if self.tracker.is_active() {
                    self.tracker_check_at = Some(now + TRACKER_POLL);
                }
            }
        }
    }

    /// The call is over: whatever is pending is decided.
    pub(crate) fn finish(&mut self, cx: &mut Ctx<'_>) {
        self.release_held(cx, true);
        self.end_tracker(cx);
        self.masker.finish();
        self.masker_events(cx);
        self.flush_at = None;
        self.tracker_check_at = None;
    }
}
