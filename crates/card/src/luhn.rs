//! The Luhn (mod 10) check digit.

/// True when `digits` (ASCII `0`-`9`) pass the Luhn check: from the rightmost digit
/// leftwards, every second digit is doubled (minus 9 when above 9) and the sum is a
/// multiple of 10. False for an empty input or any non-digit byte.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// The digit that completes `body` into a Luhn-valid number (used to make test numbers).
pub fn luhn_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, &b) in body.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(b - b'0');
        // The check digit will sit at position 0, so the body's last digit is doubled.
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    // (10 - sum % 10) % 10 is in 0..=9.
    Some(b'0' + ((10 - sum % 10) % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert!(luhn_valid(b"4242424242424242"));
        assert!(!luhn_valid(b"4242424242424241"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(!luhn_valid(b""));
        assert!(!luhn_valid(b"4242 4242"));
        assert!(luhn_valid(b"0"));
    }

    #[test]
    fn check_digit_completes_any_body() {
        for body in [&b"424242424242424"[..], b"37828224631000", b"7992739871", b"1"] {
            let c = luhn_check_digit(body).expect("digits");
            let mut full = body.to_vec();
            full.push(c);
            assert!(luhn_valid(&full));
            // Every other final digit fails: a single-digit error is always caught.
            for other in b'0'..=b'9' {
                if other != c {
                    *full.last_mut().expect("non-empty") = other;
                    assert!(!luhn_valid(&full));
                }
            }
        }
    }
}
