//! The B2BUA's view of the media relay, implemented with the real relay.

use std::collections::HashMap;

use ivrpay_media::{DigitEvent, MediaEngine, MediaEvent, MediaProfile, PayloadTypes, RemoteMedia};
use ivrpay_sip::media::{CallId, Leg, MediaControl, MediaPorts, MediaSettings, MediaUnavailable};
use ivrpay_sip::sdp::{self, StreamInfo};
use tokio::sync::mpsc;

/// A digit the relay heard on a call.
pub(crate) type CallDigit = (CallId, DigitEvent);

/// Opens a relay session per call and steers it from the calls' SDP.
#[derive(Debug)]
pub(crate) struct RelayMedia {
    engine: MediaEngine,
    calls: HashMap<CallId, ivrpay_media::CallHandle>,
    digits: mpsc::UnboundedSender<CallDigit>,
}

impl RelayMedia {
    pub(crate) fn new(engine: MediaEngine, digits: mpsc::UnboundedSender<CallDigit>) -> RelayMedia {
        RelayMedia { engine, calls: HashMap::new(), digits }
    }
}

/// What the relay needs from a leg's SDP; `None` while the leg sends nowhere (port 0 or a
/// 0.0.0.0 hold), or when it negotiated nothing the relay can decode.
fn remote_media(stream: &StreamInfo) -> Option<RemoteMedia> {
    let rtp = stream.rtp?;
    let mut pcmu = None;
    let mut pcma = None;
    for (pt, codec) in &stream.codecs {
        match codec {
            sdp::Codec::Pcmu => pcmu = pcmu.or(Some(*pt)),
            sdp::Codec::Pcma => pcma = pcma.or(Some(*pt)),
        }
    }
    let send = stream.codecs.first()?.1;
    let payload_types = PayloadTypes { pcmu, pcma, telephone_event: stream.telephone_event, send };
    let ptime_ms =
        stream.ptime.filter(|p| (10..=60).contains(p) && p % 10 == 0).unwrap_or(20) as u16;
    Some(RemoteMedia { rtp, rtcp: stream.rtcp, rtcp_mux: false, payload_types, ptime_ms })
}

impl MediaControl for RelayMedia {
    fn open(
        &mut self,
        call: &CallId,
        settings: &MediaSettings,
    ) -> Result<MediaPorts, MediaUnavailable> {
        let profile = MediaProfile {
            mask_mode: settings.mask_mode,
            lookahead_ms: settings.lookahead_ms.round().clamp(0.0, 60.0) as u16,
            latching: settings.latching,
            ..MediaProfile::default()
        };
        let media = self.engine.create_call(settings.address, profile).map_err(|e| {
            // The call gets 503; the reason is for the operator (no call data in it).
            tracing::warn!("media relay cannot take a call: {e}");
            MediaUnavailable(e.to_string())
        })?;
        tokio::spawn(media.driver.run());
        let ports = MediaPorts {
            customer: media.handle.local(Leg::Customer).rtp,
            agent: Some(media.handle.local(Leg::Agent).rtp),
        };
        let (mut events, digits, id) = (media.events, self.digits.clone(), call.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let MediaEvent::Digit(digit) = event {
                    if digits.send((id.clone(), digit)).is_err() {
                        return;
                    }
                }
            }
        });
        self.calls.insert(call.clone(), media.handle);
        Ok(ports)
    }

    fn update(&mut self, call: &CallId, leg: Leg, stream: &StreamInfo) {
        let (Some(handle), Some(remote)) = (self.calls.get(call), remote_media(stream)) else {
            return;
        };
        // A refusal (an odd ptime, payload types that collide) leaves the previous setting.
        let _ = handle.set_remote(leg, remote);
    }

    fn close(&mut self, call: &CallId) {
        if let Some(handle) = self.calls.remove(call) {
            tokio::spawn(async move {
                let _ = handle.close().await;
            });
        }
    }
}
