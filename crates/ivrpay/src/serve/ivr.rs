//! The IVR in `serve`: it plays prompts through the relay's handles and hangs calls up
//! through the SIP driver.

use std::sync::Arc;

use ivrpay_ivr::{CallControl, Ivr, IvrConfig, MediaCalls};
use ivrpay_media::CallHandle;
use ivrpay_service::{Service, SystemClock};
use ivrpay_sip::driver::SipControl;
use ivrpay_sip::media::CallId as SipCallId;
use ivrpay_sip::profile::Profile;
use ivrpay_store::CallId;

use super::media::MediaHandles;

impl MediaCalls for MediaHandles {
    fn media(&self, call: &CallId) -> Option<CallHandle> {
        self.get(&SipCallId(call.as_str().to_owned()))
    }
}

/// Hangs calls up with a BYE from the SIP driver.
#[derive(Debug)]
struct Hangup(SipControl);

impl CallControl for Hangup {
    fn hangup(&self, call: &CallId) {
        let (control, call) = (self.0.clone(), SipCallId(call.as_str().to_owned()));
        tokio::spawn(async move { control.hangup(call).await });
    }
}

/// Each profile's IVR settings, by name.
pub(crate) fn profiles(profiles: &[Profile]) -> Vec<(String, ivrpay_sip::profile::IvrSettings)> {
    profiles.iter().map(|p| (p.name.clone(), p.ivr.clone())).collect()
}

/// The IVR, with each profile's prompt set loaded.
pub(crate) fn start(
    service: &Service,
    profiles: Vec<(String, ivrpay_sip::profile::IvrSettings)>,
    media: MediaHandles,
    sip: SipControl,
) -> Result<Ivr, String> {
    let config = IvrConfig { profiles, inter_digit_timeout: service.inter_digit_timeout() };
    Ivr::new(service.clone(), Arc::new(SystemClock), config, Arc::new(media), Arc::new(Hangup(sip)))
        .map_err(|e| format!("IVR: {e}"))
}
