//! The fields a session captures and sets of them.

use std::fmt;

/// A field of a card payment, in the default capture order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The card number (`payment-card-number`).
    CardNumber,
    /// The expiry date, `MMYY` (`expiration-date`).
    Expiry,
    /// The security code (`security-code`).
    SecurityCode,
    /// The billing postal code (`postal-code`).
    PostalCode,
}

impl Field {
    /// Every field in the default capture order.
    pub const ALL: [Field; 4] =
        [Field::CardNumber, Field::Expiry, Field::SecurityCode, Field::PostalCode];

    /// Twilio's name for the field (its `Capture` values).
    pub fn name(self) -> &'static str {
        match self {
            Field::CardNumber => "payment-card-number",
            Field::Expiry => "expiration-date",
            Field::SecurityCode => "security-code",
            Field::PostalCode => "postal-code",
        }
    }

    /// The field with Twilio's name.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of fields, e.g. the fields still `required`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldSet(u8);

impl FieldSet {
    /// No field.
    pub const EMPTY: FieldSet = FieldSet(0);

    /// This set plus `f`.
    #[must_use]
    pub fn with(self, f: Field) -> FieldSet {
        FieldSet(self.0 | 1 << f.index())
    }

    /// This set without `f`.
    #[must_use]
    pub fn without(self, f: Field) -> FieldSet {
        FieldSet(self.0 & !(1 << f.index()))
    }

    /// True when `f` is in the set.
    pub fn contains(self, f: Field) -> bool {
        self.0 & 1 << f.index() != 0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in capture order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |&f| self.contains(f))
    }

    /// The first field in capture order.
    pub fn first(self) -> Option<Field> {
        self.iter().next()
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        iter.into_iter().fold(FieldSet::EMPTY, FieldSet::with)
    }
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Field::name)).finish()
    }
}

impl fmt::Display for FieldSet {
    /// Space-separated Twilio names, e.g. `expiration-date security-code`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(field.name())?;
        }
        Ok(())
    }
}
