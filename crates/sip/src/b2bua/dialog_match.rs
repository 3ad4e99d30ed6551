//! Which call a request inside a dialog belongs to. Anyone who can reach the SIP port can
//! send a BYE or an INFO, so a request acts on a call only when it names one of the call's
//! dialogs whole — the Call-ID, the peer's tag in From and ours in To (RFC 3261 §12.2.2) —
//! and comes from that leg's peer or a network the profile lists for the leg
//! ([`DialogSources`](crate::profile::DialogSources)). Everything else is treated as a
//! dialog that does not exist (481; an ACK is dropped), so trying tells a stranger nothing.

use bytesstr::BytesStr;

use super::Core;
use crate::media::{Leg, MediaControl};
use crate::message::Essentials;
use crate::transport::Peer;

impl<M: MediaControl> Core<M> {
    /// The call and leg whose SIP Call-ID this is (not yet proof that the request is the
    /// peer's: see [`Core::find_dialog`]).
    pub(super) fn call_by_call_id(&self, call_id: &BytesStr) -> Option<(u64, Leg)> {
        if let Some(&key) = self.by_customer.get(call_id) {
            return Some((key, Leg::Customer));
        }
        self.by_agent.get(call_id).map(|&key| (key, Leg::Agent))
    }

    /// The call and leg of a request in a dialog (ACK included), from `from`: `None` unless
    /// the Call-ID and both tags name the leg's dialog and `from` is the leg's peer.
    pub(super) fn find_dialog(&self, essentials: &Essentials, from: &Peer) -> Option<(u64, Leg)> {
        let (key, leg) = self.call_by_call_id(&essentials.call_id)?;
        let call = self.calls.get(&key)?;
        let dialog = call.dialog(leg)?;
        if !dialog.is_named_by(essentials.from_tag.as_ref(), essentials.to_tag.as_ref()) {
            return None;
        }
        let ip = from.addr.ip();
        let allowed =
            dialog.is_peer(ip) || self.profiles[call.profile].dialog_sources.lists(leg, ip);
        allowed.then_some((key, leg))
    }

    /// The call whose INVITE a CANCEL cancels: the CANCEL repeats the INVITE's Call-ID, From
    /// tag and top Via branch (RFC 3261 §9.1) and, being hop-by-hop, comes from the address
    /// the INVITE came from.
    pub(super) fn find_cancelled(&self, essentials: &Essentials, from: &Peer) -> Option<u64> {
        let &key = self.by_customer.get(&essentials.call_id)?;
        let call = self.calls.get(&key)?;
        let customer = &call.customer;
        let same_invite = call.invite.is_some()
            && call.invite_branch == essentials.branch()
            && essentials.from_tag.is_some()
            && essentials.from_tag == customer.remote_tag;
        (same_invite && from.addr.ip() == customer.origin).then_some(key)
    }
}
