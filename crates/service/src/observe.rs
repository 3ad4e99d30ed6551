//! Following a call's payment session from inside the process, as the IVR does: the
//! capture's events as they happen (typed, in order, before they are committed to the feed)
//! and the session's state after `complete` and `cancel`, on a channel per observer.

use ivrpay_capture::Event;
use tokio::sync::mpsc;

use crate::view::PaymentView;

/// What an observer of a call ([`crate::Service::observe`]) receives. Masked values only,
/// as on the feed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SessionUpdate {
    /// An event of the capture of the call's open session.
    Capture(Event),
    /// The session after a `complete` or `cancel`, whoever asked for it.
    Changed(Box<PaymentView>),
}

/// The observers of one call; those that went away are dropped on the next send.
#[derive(Debug, Default)]
pub(crate) struct Observers(Vec<mpsc::UnboundedSender<SessionUpdate>>);

impl Observers {
    pub(crate) fn add(&mut self, observer: mpsc::UnboundedSender<SessionUpdate>) {
        self.0.push(observer);
    }

    pub(crate) fn send(&mut self, update: impl Fn() -> SessionUpdate) {
        self.0.retain(|observer| observer.send(update()).is_ok());
    }
}
