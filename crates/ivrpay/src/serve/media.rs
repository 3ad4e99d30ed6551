//! The B2BUA's view of the media relay, implemented with the real relay.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ivrpay_media::{
    CallHandle, MediaEngine, MediaEvent, MediaProfile, MediaRuntime, PayloadTypes, RemoteMedia,
};
use ivrpay_sip::media::{CallId, Leg, MediaControl, MediaPorts, MediaSettings, MediaUnavailable};
use ivrpay_sip::sdp::{self, StreamInfo};
use tokio::sync::mpsc;

/// What the relay reports on a call: its keys and the ends of the prompts it played.
pub(crate) type CallMediaEvent = (CallId, MediaEvent);

/// The relay's handles of the calls in progress, shared with the IVR (prompts, hold).
#[derive(Clone, Debug, Default)]
pub(crate) struct MediaHandles(Arc<Mutex<HashMap<CallId, CallHandle>>>);

impl MediaHandles {
    fn lock(&self) -> MutexGuard<'_, HashMap<CallId, CallHandle>> {
        // A poisoned lock means a panic while holding it; the map itself is whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, call: &CallId) -> Option<CallHandle> {
        self.lock().get(call).cloned()
    }
}

/// Opens a relay session per call and steers it from the calls' SDP.
#[derive(Debug)]
pub(crate) struct RelayMedia {
    engine: MediaEngine,
    /// Where the calls' drivers run; dropped with the SIP driver, ending what is left.
    threads: MediaRuntime,
    calls: MediaHandles,
    events: mpsc::UnboundedSender<CallMediaEvent>,
}

impl RelayMedia {
    pub(crate) fn new(
        engine: MediaEngine,
        threads: MediaRuntime,
        calls: MediaHandles,
        events: mpsc::UnboundedSender<CallMediaEvent>,
    ) -> RelayMedia {
        RelayMedia { engine, threads, calls, events }
    }
}

/// What the relay needs from a leg's SDP and whom it came from; `None` while the leg sends
/// nowhere (port 0 or a 0.0.0.0 hold), or when it negotiated nothing the relay can decode.
fn remote_media(stream: &StreamInfo, sip_peer: Option<IpAddr>) -> Option<RemoteMedia> {
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
    Some(RemoteMedia {
        rtp,
        rtcp: stream.rtcp,
        rtcp_mux: false,
        payload_types,
        ptime_ms,
        signalling_peer: sip_peer,
    })
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
            latch_from: settings.latch_from,
            ..MediaProfile::default()
        };
        let media =
            self.threads.create_call(&self.engine, settings.address, profile).map_err(|e| {
                // The call gets 503; the reason is for the operator (no call data in it).
                tracing::warn!("media relay cannot take a call: {e}");
                MediaUnavailable(e.to_string())
            })?;
        let ports = MediaPorts {
            customer: media.handle.local(Leg::Customer).rtp,
            // An IVR call has no agent leg (the relay binds its ports all the same).
            agent: (!settings.customer_only).then(|| media.handle.local(Leg::Agent).rtp),
        };
        let (mut events, out, id) = (media.events, self.events.clone(), call.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if matches!(event, MediaEvent::Digit(_) | MediaEvent::PromptEnded { .. })
                    && out.send((id.clone(), event)).is_err()
                {
                    return;
                }
            }
        });
        self.calls.lock().insert(call.clone(), media.handle);
        Ok(ports)
    }

    fn update(&mut self, call: &CallId, leg: Leg, stream: &StreamInfo, sip_peer: Option<IpAddr>) {
        let (Some(handle), Some(remote)) = (self.calls.get(call), remote_media(stream, sip_peer))
        else {
            return;
        };
        // A refusal (an odd ptime, payload types that collide) leaves the previous setting.
        let _ = handle.set_remote(leg, remote);
    }

    fn close(&mut self, call: &CallId) {
        let handle = self.calls.lock().remove(call);
        if let Some(handle) = handle {
            tokio::spawn(async move {
                let _ = handle.close().await;
            });
        }
    }
}
