//! Everything captured about one card, handed from capture to the vault and a gateway.

use crate::brand::Brand;
use crate::cvv::Cvv;
use crate::expiry::Expiry;
use crate::pan::{MaskedPan, Pan};
use crate::postal::PostalCode;

/// The card data of one payment. Every field redacts itself in `Debug` and wipes itself
/// on drop, so dropping a `CardData` wipes the card.
#[derive(Debug)]
pub struct CardData {
    /// The card number.
    pub pan: Pan,
    /// The expiry month.
    pub expiry: Expiry,
    /// The security code, when the session asked for it. Wipe it with
    /// [`CardData::wipe_cvv`] as soon as a gateway has answered (PCI DSS 3.3.1.2).
    pub cvv: Option<Cvv>,
    /// The billing postal code, when the session asked for it.
    pub postal_code: Option<PostalCode>,
}

impl CardData {
    /// The brand by IIN, if known.
    pub fn brand(&self) -> Option<Brand> {
        self.pan.brand()
    }

    /// What an agent may see of the card number.
    pub fn masked(&self) -> MaskedPan {
        self.pan.masked()
    }

    /// Drops (and so zeroizes) the security code.
    pub fn wipe_cvv(&mut self) {
        self.cvv = None;
    }
}
