//! Card brands: the IIN (issuer identification number) table, PAN lengths and security
//! code lengths (research/payments.md §6).
//!
//! The table is the union of Twilio's `validCardTypes` rules and Braintree's
//! `credit-card-type` patterns, restricted to the eight brands in scope. Ranges overlap
//! on purpose (Maestro's catch-all `6` under Discover's `6011`, UnionPay's `62`, …): the
//! **longest matching prefix wins**, and no two ranges of the same prefix length overlap,
//! so the winner is always unique.
//!
//! Left out, with the reason:
//! - Maestro `493698` (Braintree): it would take cards away from Visa's `4`, which Twilio
//!   does not do;
//! - Discover's co-branded UnionPay range `622126`–`622925`: UnionPay's `62` decides;
//! - Elo, Mir, Hiper, Verve, Optima, enRoute: outside the brands the issue names.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A card brand (network).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Brand {
    /// Visa: `4`.
    Visa,
    /// Mastercard: `51`–`55`, `2221`–`2720`.
    Mastercard,
    /// American Express: `34`, `37`; 15 digits, 4-digit CID.
    Amex,
    /// Discover: `6011`, `644`–`649`, `65`.
    Discover,
    /// JCB: `3528`–`3589` (and Braintree's `2131`, `1800`).
    Jcb,
    /// Diners Club: `300`–`305`, `3095`, `36`, `38`, `39`.
    DinersClub,
    /// UnionPay: `62`, `810`–`8171`.
    UnionPay,
    /// Maestro: `50`, `56`–`59`, `6` (catch-all, loses to every longer prefix), `63`, `67`.
    Maestro,
}

/// One IIN range: the first `digits` digits of the PAN, read as a number, lie in `lo..=hi`.
struct IinRange {
    brand: Brand,
    lo: u32,
    hi: u32,
    digits: u8,
}

const fn r(brand: Brand, lo: u32, hi: u32, digits: u8) -> IinRange {
    IinRange { brand, lo, hi, digits }
}

/// The IIN table (research/payments.md §6).
const IIN_TABLE: &[IinRange] = &[
    r(Brand::Visa, 4, 4, 1),
    r(Brand::Mastercard, 51, 55, 2),
    r(Brand::Mastercard, 2221, 2720, 4),
    r(Brand::Amex, 34, 34, 2),
    r(Brand::Amex, 37, 37, 2),
    r(Brand::Discover, 6011, 6011, 4),
    r(Brand::Discover, 644, 649, 3),
    r(Brand::Discover, 65, 65, 2),
    r(Brand::Jcb, 3528, 3589, 4),
    r(Brand::Jcb, 2131, 2131, 4),
    r(Brand::Jcb, 1800, 1800, 4),
    r(Brand::DinersClub, 300, 305, 3),
    r(Brand::DinersClub, 3095, 3095, 4),
    r(Brand::DinersClub, 36, 36, 2),
    r(Brand::DinersClub, 38, 39, 2),
    r(Brand::UnionPay, 62, 62, 2),
    r(Brand::UnionPay, 810, 816, 3),
    r(Brand::UnionPay, 8170, 8171, 4),
    r(Brand::Maestro, 50, 50, 2),
    r(Brand::Maestro, 56, 59, 2),
    r(Brand::Maestro, 6, 6, 1),
    r(Brand::Maestro, 63, 63, 2),
    r(Brand::Maestro, 67, 67, 2),
];

/// Longest prefix in the table, in digits.
const MAX_PREFIX: usize = 4;

/// What the digits typed so far say about the brand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Every card number of a known brand that starts with these digits is of this brand.
    Known(Brand),
    /// More digits are needed (several brands are still possible, or none typed yet).
    Pending,
    /// No brand in the table starts with these digits.
    Unknown,
}

impl Brand {
    /// Every brand, in declaration order.
    pub const ALL: [Brand; 8] = [
        Brand::Visa,
        Brand::Mastercard,
        Brand::Amex,
        Brand::Discover,
        Brand::Jcb,
        Brand::DinersClub,
        Brand::UnionPay,
        Brand::Maestro,
    ];

    /// The brand's name as Twilio's `validCardTypes` spells it (`unionpay` is ours).
    pub fn name(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Jcb => "jcb",
            Brand::DinersClub => "diners-club",
            Brand::UnionPay => "unionpay",
            Brand::Maestro => "maestro",
        }
    }

    /// The PAN lengths this brand issues.
    ///
    /// Visa accepts 13–19 (Twilio lists 13, 15, 19 and Braintree 16, 18, 19; 13 is legacy);
    /// Diners Club 14–19 (Braintree 14, 16, 19; Twilio 16–19, 14–19 under `36`).
    pub fn pan_lengths(self) -> RangeInclusive<usize> {
        match self {
            Brand::Visa => 13..=19,
            Brand::Mastercard => 16..=16,
            Brand::Amex => 15..=15,
            Brand::Discover | Brand::Jcb => 16..=19,
            Brand::DinersClub | Brand::UnionPay => 14..=19,
            Brand::Maestro => 12..=19,
        }
    }

    /// The length most cards of this brand have: capture ends the card-number field by
    /// itself at this length when the number passes Luhn (a longer card ends with `#`).
    pub fn usual_pan_length(self) -> usize {
        match self {
            Brand::Amex => 15,
            Brand::DinersClub => 14,
            _ => 16,
        }
    }

    /// Length of the security code: 4 for Amex's CID (on the front), 3 for the others
    /// (CVV2, CVC2, CVN2).
    pub fn cvv_len(self) -> usize {
        match self {
            Brand::Amex => 4,
            _ => 3,
        }
    }

    /// Digit groups as printed on the card and shown to agents: Amex 4-6-5, Diners Club
    /// 14-digit 4-6-4, everything else groups of four.
    pub fn grouping(self, pan_len: usize) -> &'static [usize] {
        match (self, pan_len) {
            (Brand::Amex, 15) => &[4, 6, 5],
            (Brand::DinersClub, 14) => &[4, 6, 4],
            (_, 12) => &[4, 4, 4],
            (_, 13) => &[4, 4, 4, 1],
            (_, 14) => &[4, 4, 4, 2],
            (_, 15) => &[4, 4, 4, 3],
            (_, 16) => &[4, 4, 4, 4],
            (_, 17) => &[4, 4, 4, 4, 1],
            (_, 18) => &[4, 4, 4, 4, 2],
            _ => &[4, 4, 4, 4, 3],
        }
    }

    /// The brand of a complete card number (ASCII digits): the longest matching prefix.
    pub fn of_pan(digits: &[u8]) -> Option<Brand> {
        match digits.get(..MAX_PREFIX) {
            Some(p) if p.iter().all(u8::is_ascii_digit) => {
                slot_brand(BY_PREFIX[prefix_value(p, MAX_PREFIX) as usize])
            }
            _ => best_match(digits).map(|e| e.brand),
        }
    }

    /// What the first digits of a card number being typed say about its brand.
    ///
    /// `Known(b)` means every number starting with these digits is a `b` card: the brand
    /// cannot change (nor vanish) with more digits. It is decided by looking at every way
    /// of growing the digits to the longest prefix in the table, in a table of the 10,000
    /// four-digit prefixes built at compile time.
    pub fn detect(typed: &[u8]) -> Detection {
        if typed.is_empty() {
            return Detection::Pending;
        }
        if !typed.iter().all(u8::is_ascii_digit) {
            return Detection::Unknown;
        }
        let n = typed.len().min(MAX_PREFIX);
        let width = 10usize.pow((MAX_PREFIX - n) as u32);
        let first = prefix_value(typed, n) as usize * width;
        let slots = &BY_PREFIX[first..first + width];
        if slots.iter().any(|&b| b != slots[0]) {
            return Detection::Pending;
        }
        match slot_brand(slots[0]) {
            Some(b) => Detection::Known(b),
            None => Detection::Unknown,
        }
    }
}

/// The brand (index in [`Brand::ALL`] plus one, 0 for none) of every four-digit prefix,
/// by the longest matching range.
static BY_PREFIX: [u8; 10_000] = build_prefix_table();

const fn build_prefix_table() -> [u8; 10_000] {
    let mut table = [0u8; 10_000];
    let mut v = 0;
    while v < 10_000 {
        let mut best_digits = 0;
        let mut i = 0;
        while i < IIN_TABLE.len() {
            let e = &IIN_TABLE[i];
            let prefix = v / 10u32.pow(MAX_PREFIX as u32 - e.digits as u32);
            if prefix >= e.lo && prefix <= e.hi && e.digits > best_digits {
                best_digits = e.digits;
                table[v as usize] = e.brand as u8 + 1;
            }
            i += 1;
        }
        v += 1;
    }
    table
}

fn slot_brand(slot: u8) -> Option<Brand> {
    usize::from(slot).checked_sub(1).and_then(|i| Brand::ALL.get(i).copied())
}

/// The first `n` digits of `digits` as a number (`n` ≤ [`MAX_PREFIX`], all ASCII digits).
fn prefix_value(digits: &[u8], n: usize) -> u32 {
    digits[..n].iter().fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
}

/// The longest table entry whose prefix is fully typed and matches.
fn best_match(digits: &[u8]) -> Option<&'static IinRange> {
    if !digits.iter().take(MAX_PREFIX).all(u8::is_ascii_digit) {
        return None;
    }
    IIN_TABLE
        .iter()
        .filter(|e| usize::from(e.digits) <= digits.len())
        .filter(|e| {
            let v = prefix_value(digits, usize::from(e.digits));
            (e.lo..=e.hi).contains(&v)
        })
        .max_by_key(|e| e.digits)
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A brand name that is not one of [`Brand::name`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownBrand;

impl fmt::Display for UnknownBrand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown card brand")
    }
}

impl std::error::Error for UnknownBrand {}

impl FromStr for Brand {
    type Err = UnknownBrand;

    /// Twilio's spellings, case-insensitive (`diners` and `american-express` also work).
    fn from_str(s: &str) -> Result<Brand, UnknownBrand> {
        let s = s.trim().to_ascii_lowercase();
        Brand::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .or(match s.as_str() {
                "diners" | "dinersclub" => Some(Brand::DinersClub),
                "american-express" | "americanexpress" => Some(Brand::Amex),
                "union-pay" => Some(Brand::UnionPay),
                _ => None,
            })
            .ok_or(UnknownBrand)
    }
}

/// A set of brands, e.g. the brands a session accepts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrandSet(u16);

impl BrandSet {
    /// No brand.
    pub const EMPTY: BrandSet = BrandSet(0);

    /// Every brand.
    pub fn all() -> BrandSet {
        Brand::ALL.into_iter().collect()
    }

    fn bit(b: Brand) -> u16 {
        1 << (b as u16)
    }

    /// This set plus `b`.
    #[must_use]
    pub fn with(self, b: Brand) -> BrandSet {
        BrandSet(self.0 | Self::bit(b))
    }

    /// True when `b` is in the set.
    pub fn contains(self, b: Brand) -> bool {
        self.0 & Self::bit(b) != 0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The brands in the set, in [`Brand::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Brand> {
        Brand::ALL.into_iter().filter(move |&b| self.contains(b))
    }

    /// Parses a space- or comma-separated list (Twilio's `ValidCardTypes`).
    pub fn parse_list(s: &str) -> Result<BrandSet, UnknownBrand> {
        s.split([' ', ',']).filter(|w| !w.is_empty()).map(str::parse).collect()
    }
}

impl Default for BrandSet {
    /// Twilio's default `ValidCardTypes`: `visa mastercard amex`.
    fn default() -> Self {
        BrandSet::EMPTY.with(Brand::Visa).with(Brand::Mastercard).with(Brand::Amex)
    }
}

impl FromIterator<Brand> for BrandSet {
    fn from_iter<I: IntoIterator<Item = Brand>>(iter: I) -> Self {
        iter.into_iter().fold(BrandSet::EMPTY, BrandSet::with)
    }
}

impl fmt::Debug for BrandSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for BrandSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(b.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_length_ranges_never_overlap() {
        for (i, a) in IIN_TABLE.iter().enumerate() {
            assert!(a.lo <= a.hi);
            assert!(usize::from(a.digits) <= MAX_PREFIX);
            assert!(a.hi < 10u32.pow(u32::from(a.digits)));
            for b in &IIN_TABLE[i + 1..] {
                if a.digits == b.digits {
                    assert!(
                        a.hi < b.lo || b.hi < a.lo,
                        "{:?} {}-{} overlaps {:?}",
                        a.brand,
                        a.lo,
                        a.hi,
                        b.brand
                    );
                }
            }
        }
    }

    #[test]
    fn prefix_table_agrees_with_the_ranges() {
        for v in 0..10_000u32 {
            let digits = format!("{v:04}");
            let by_range = best_match(digits.as_bytes()).map(|e| e.brand);
            assert_eq!(slot_brand(BY_PREFIX[v as usize]), by_range, "{digits}");
        }
        assert!(Brand::ALL.iter().enumerate().all(|(i, &b)| b as usize == i));
    }

    #[test]
    fn brand_set_round_trip() {
        let set = BrandSet::parse_list("visa, amex maestro").expect("names");
        assert_eq!(set.to_string(), "visa amex maestro");
        assert!(set.contains(Brand::Amex) && !set.contains(Brand::Jcb));
        assert_eq!(BrandSet::parse_list("visa bogus"), Err(UnknownBrand));
        assert_eq!(BrandSet::all().iter().count(), 8);
        assert_eq!(BrandSet::default().to_string(), "visa mastercard amex");
    }
}
