//! The sixteen DTMF keys and their frequency pairs (ITU-T Q.23).

use std::fmt;

/// Low-group (row) frequencies in Hz.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz.
pub const COL_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Keypad order: index = row * 4 + column.
const KEYPAD: [u8; 16] = *b"123A456B789C*0#D";
/// RFC 4733 event codes 0..=15 in keypad order.
const EVENT_CODES: [u8; 16] = [1, 2, 3, 12, 4, 5, 6, 13, 7, 8, 9, 14, 10, 0, 11, 15];

/// One DTMF key.
///
/// Digits are card data until proven otherwise, so `Debug` never shows which key it is;
/// [`Digit::as_char`] is the explicit way to expose it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(u8);

impl Digit {
    /// All sixteen keys in keypad order (`1 2 3 A 4 5 6 B 7 8 9 C * 0 # D`).
    pub const ALL: [Digit; 16] = {
        let mut all = [Digit(0); 16];
        let mut i = 0;
        while i < 16 {
            all[i] = Digit(i as u8);
            i += 1;
        }
        all
    };

    /// The key with this row (0..4) and column (0..4).
    pub(crate) fn from_row_col(row: usize, col: usize) -> Digit {
        debug_assert!(row < 4 && col < 4);
        Digit((row * 4 + col) as u8)
    }

    /// The key printed as `c` (`0-9`, `*`, `#`, `A-D`, also lower case `a-d`).
    pub fn from_char(c: char) -> Option<Digit> {
        let c = c.to_ascii_uppercase();
        KEYPAD.iter().position(|&k| char::from(k) == c).map(|i| Digit(i as u8))
    }

    /// The key for an RFC 4733 event code (0-9, 10 = `*`, 11 = `#`, 12-15 = `A-D`).
    pub fn from_event_code(code: u8) -> Option<Digit> {
        EVENT_CODES.iter().position(|&e| e == code).map(|i| Digit(i as u8))
    }

    /// The RFC 4733 event code of this key.
    pub fn event_code(self) -> u8 {
        EVENT_CODES[usize::from(self.0)]
    }

    /// The character printed on the key. This exposes card data: use it only where the digit
    /// is meant to be seen (capture, the offline tools, tests).
    pub fn as_char(self) -> char {
        char::from(KEYPAD[usize::from(self.0)])
    }

    /// Row index 0..4 (697, 770, 852, 941 Hz).
    pub fn row(self) -> usize {
        usize::from(self.0 / 4)
    }

    /// Column index 0..4 (1209, 1336, 1477, 1633 Hz).
    pub fn col(self) -> usize {
        usize::from(self.0 % 4)
    }

    /// The (low, high) frequency pair in Hz.
    pub fn frequencies(self) -> (f32, f32) {
        (ROW_HZ[self.row()], COL_HZ[self.col()])
    }
}

impl fmt::Debug for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digit(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_and_event_codes_round_trip() {
        for d in Digit::ALL {
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
            assert_eq!(Digit::from_event_code(d.event_code()), Some(d));
        }
        assert_eq!(Digit::from_char('5').map(Digit::frequencies), Some((770.0, 1336.0)));
        assert_eq!(Digit::from_event_code(10).map(Digit::as_char), Some('*'));
        assert_eq!(Digit::from_event_code(11).map(Digit::as_char), Some('#'));
        assert_eq!(Digit::from_char('d').map(Digit::as_char), Some('D'));
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit::from_event_code(16), None);
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let shown: std::collections::HashSet<String> =
            Digit::ALL.iter().map(|d| format!("{d:?}")).collect();
        assert_eq!(shown.len(), 1, "every key must look the same: {shown:?}");
    }
}
