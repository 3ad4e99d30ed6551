//! The process's Prometheus metrics (calls, digits, the media relay, the sync), served with
//! the API's own on `/metrics` by `ivrpay_api`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::state::AppState;

/// The Prometheus text of everything but the API.
pub(crate) fn render_metrics(state: &AppState) -> String {
    let mut out = String::with_capacity(4096);
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP ivrpay_{name} {help}\n# TYPE ivrpay_{name} {kind}\nivrpay_{name} {value}"
        );
    };
    let c = &state.counters;
    gauge("calls_active", "Calls in progress.", "gauge", state.active_calls() as u64);
    gauge(
        "calls_started_total",
        "Calls taken.",
        "counter",
        c.calls_started.load(Ordering::Relaxed),
    );
    gauge(
        "calls_answered_total",
        "Calls answered by an agent.",
        "counter",
        c.calls_answered.load(Ordering::Relaxed),
    );
    gauge("calls_ended_total", "Calls ended.", "counter", c.calls_ended.load(Ordering::Relaxed));
    gauge(
        "digits_in_band_total",
        "Key presses heard as tones.",
        "counter",
        c.digits_in_band.load(Ordering::Relaxed),
    );
    gauge(
        "digits_rfc4733_total",
        "Key presses received as telephone-events.",
        "counter",
        c.digits_rfc4733.load(Ordering::Relaxed),
    );
    gauge(
        "digits_sip_info_total",
        "Key presses received as SIP INFO.",
        "counter",
        c.digits_sip_info.load(Ordering::Relaxed),
    );
    let relay = state.engine.metrics();
    gauge("media_calls_active", "Calls with media open.", "gauge", relay.active_calls);
    gauge(
        "media_setup_failures_total",
        "Calls that could not get media ports.",
        "counter",
        relay.setup_failures,
    );
    for (leg, metrics) in [("customer", &relay.totals.customer), ("agent", &relay.totals.agent)] {
        for (name, value) in metrics.fields() {
            let _ = writeln!(out, "ivrpay_media_{name}_total{{leg=\"{leg}\"}} {value}");
        }
    }
    for (name, value) in relay.totals.masking.fields() {
        let _ = writeln!(out, "ivrpay_media_{name}_total {value}");
    }
    out.push_str(&state.sync.render());
    out
}
