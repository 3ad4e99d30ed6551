//! The dispatcher's counters, rendered in the Prometheus text format by `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the dispatcher and whoever renders them.
#[derive(Debug, Default)]
pub struct SyncMetrics {
    /// Attempts made.
    pub attempts: AtomicU64,
    /// Deliveries that reached their sink.
    pub delivered: AtomicU64,
    /// Attempts that failed (retried or dead-lettered).
    pub failed_attempts: AtomicU64,
    /// Deliveries dead-lettered.
    pub dead_lettered: AtomicU64,
    /// `delivery.failing` alerts raised.
    pub alerts: AtomicU64,
    /// Attempts whose lease had passed to another worker before they were recorded.
    pub late: AtomicU64,
    /// Deliveries being attempted now.
    pub in_flight: AtomicU64,
}

impl SyncMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format, names prefixed `ivrpay_sync_`.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &str, &AtomicU64); 7] = [
            ("attempts_total", "counter", "Delivery attempts made.", &self.attempts),
            ("delivered_total", "counter", "Deliveries that reached their sink.", &self.delivered),
            (
                "failed_attempts_total",
                "counter",
                "Delivery attempts that failed.",
                &self.failed_attempts,
            ),
            (
                "dead_lettered_total",
                "counter",
                "Deliveries dead-lettered (schedule spent).",
                &self.dead_lettered,
            ),
            (
                "delivery_failing_alerts_total",
                "counter",
                "delivery.failing alerts raised.",
                &self.alerts,
            ),
            (
                "late_attempts_total",
                "counter",
                "Attempts recorded after their lease passed on.",
                &self.late,
            ),
            ("in_flight", "gauge", "Deliveries being attempted now.", &self.in_flight),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP ivrpay_sync_{name} {help}\n# TYPE ivrpay_sync_{name} {kind}\nivrpay_sync_{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}
