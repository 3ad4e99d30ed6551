//! `Secret<T>`: a value that never prints, cannot be copied by accident, and is wiped on drop.

use std::fmt;

use zeroize::Zeroize;

/// A secret value (card number, security code, postal code).
///
/// - `Debug` and `Display` print `<redacted>`, so a secret that slips into a log line, a
///   panic message or an error shows nothing;
/// - there is no `Clone`, `Copy` or `Serialize`: a second copy must be made on purpose
///   with [`Secret::duplicate`], and storing it means calling [`Secret::expose`] first;
/// - the value is zeroized when the secret is dropped (PCI DSS 3.3.1: the security code
///   is rendered unrecoverable once the gateway has answered).
///
/// Keep `T` free of heap buffers that may reallocate (a growing `String` leaves its old
/// buffers behind): the card types here use fixed-size digit buffers.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value. Every call site is a place where card data is seen: keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutable access, for filling a buffer in place.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// A second, independently wiped copy. Deliberately not `Clone`, so that copies are
    /// visible in review.
    pub fn duplicate(&self) -> Self
    where
        T: Clone,
    {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Up to `N` ASCII digits (or other ASCII bytes) in a fixed buffer that never reallocates,
/// so wiping it wipes every copy this crate made.
#[derive(Clone)]
pub struct AsciiBuf<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> AsciiBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        AsciiBuf { bytes: [0; N], len: 0 }
    }

    /// Appends one byte; false (and nothing changes) when the buffer is full.
    pub fn push(&mut self, b: u8) -> bool {
        let len = usize::from(self.len);
        if len >= N || len >= usize::from(u8::MAX) {
            return false;
        }
        self.bytes[len] = b;
        self.len += 1;
        true
    }

    /// Removes everything, wiping the bytes.
    pub fn clear(&mut self) {
        self.bytes.zeroize();
        self.len = 0;
    }

    /// The bytes held.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The bytes held as text (empty if they are not ASCII, which the card types never
    /// allow in).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer holding a copy of `bytes`, or `None` if they do not fit.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut buf = Self::new();
        for &b in bytes {
            if !buf.push(b) {
                buf.clear();
                return None;
            }
        }
        Some(buf)
    }
}

impl<const N: usize> Default for AsciiBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Zeroize for AsciiBuf<N> {
    fn zeroize(&mut self) {
        self.clear();
    }
}

impl<const N: usize> fmt::Debug for AsciiBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AsciiBuf(<{} bytes redacted>)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroize_wipes_the_bytes() {
        let mut buf = AsciiBuf::<4>::from_slice(b"1234").expect("fits");
        assert_eq!(buf.as_str(), "1234");
        buf.zeroize();
        assert!(buf.is_empty());
        assert_eq!(buf.bytes, [0; 4]);
    }

    #[test]
    fn push_stops_when_full() {
        let mut buf = AsciiBuf::<2>::new();
        assert!(buf.push(b'1'));
        assert!(buf.push(b'2'));
        assert!(!buf.push(b'3'));
        assert_eq!(buf.as_str(), "12");
        assert!(AsciiBuf::<2>::from_slice(b"123").is_none());
    }

    #[test]
    fn secret_prints_nothing() {
        let s = Secret::new(AsciiBuf::<8>::from_slice(b"4242").expect("fits"));
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose().as_str(), "4242");
        let d = s.duplicate();
        drop(s);
        assert_eq!(d.expose().as_str(), "4242");
    }
}
