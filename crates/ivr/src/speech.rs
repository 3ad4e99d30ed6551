//! Numbers, amounts and digits as prompt names: "twelve pounds and fifty pence", "four two
//! four two".

use ivrpay_card::Money;

use crate::prompts::{Part, Utterance};

const UNITS: [&str; 20] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14",
    "n15", "n16", "n17", "n18", "n19",
];
const TENS: [&str; 10] = ["", "", "n20", "n30", "n40", "n50", "n60", "n70", "n80", "n90"];

/// The largest number read out (below a thousand million).
pub const MAX_SPOKEN: u64 = 999_999_999;

/// A number in words, British style ("one hundred and five"); above [`MAX_SPOKEN`] its
/// digits one by one.
pub fn number(n: u64) -> Utterance {
    if n > MAX_SPOKEN {
        return digits(&n.to_string());
    }
    let mut out = Utterance::new();
    say(n, &mut out);
    out
}

fn say(n: u64, out: &mut Utterance) {
    match n {
        // The casts index arrays of 20 and 10 entries with values below those bounds.
        0..=19 => out.0.push(Part::Clip(UNITS[n as usize])),
        20..=99 => {
            out.0.push(Part::Clip(TENS[(n / 10) as usize]));
            if n % 10 != 0 {
                out.0.push(Part::Clip(UNITS[(n % 10) as usize]));
            }
        }
        100..=999 => {
            say(n / 100, out);
            out.0.push(Part::Clip("hundred"));
            if n % 100 != 0 {
                out.0.push(Part::Clip("and"));
                say(n % 100, out);
            }
        }
        _ => {
            let (big, unit) =
                if n >= 1_000_000 { (1_000_000, "million") } else { (1000, "thousand") };
            say(n / big, out);
            out.0.push(Part::Clip(unit));
            let rest = n % big;
            if rest != 0 {
                if rest < 100 {
                    out.0.push(Part::Clip("and"));
                }
                say(rest, out);
            }
        }
    }
}

/// Digits one by one ("four two four two"); anything but `0`–`9` is skipped.
pub fn digits(text: &str) -> Utterance {
    let mut out = Utterance::new();
    for b in text.bytes().filter(u8::is_ascii_digit) {
        out.0.push(Part::Clip(UNITS[usize::from(b - b'0')]));
    }
    out
}

/// The unit words of the currencies the prompt set can name: (one major, several major, one
/// minor, several minor).
fn units(code: &str) -> Option<[&'static str; 4]> {
    match code {
        "GBP" => Some(["pound", "pounds", "penny", "pence"]),
        "USD" | "CAD" | "AUD" | "NZD" => Some(["dollar", "dollars", "cent", "cents"]),
        "EUR" => Some(["euro", "euros", "cent", "cents"]),
        _ => None,
    }
}

/// An amount of money: "twelve pounds and fifty pence", "one dollar", "fifty cents". A
/// currency the set has no words for is read as its major and minor numbers ("twelve and
/// fifty").
pub fn amount(money: Money) -> Utterance {
    let exponent = u32::from(money.currency().exponent());
    let scale = 10u64.pow(exponent);
    let (major, minor) = (money.minor() / scale, money.minor() % scale);
    let mut out = Utterance::new();
    let words = units(money.currency().code());
    if major > 0 || minor == 0 {
        out = out.then(number(major));
        if let Some(w) = words {
            out = out.clip(if major == 1 { w[0] } else { w[1] });
        }
    }
    if minor > 0 {
        if major > 0 {
            out = out.clip("and");
        }
        out = out.then(number(minor));
        if let Some(w) = words {
            out = out.clip(if minor == 1 { w[2] } else { w[3] });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ivrpay_card::Currency;

    use super::*;

    fn said(u: Utterance) -> String {
        u.clips().join(" ")
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(said(number(0)), "n0");
        assert_eq!(said(number(13)), "n13");
        assert_eq!(said(number(40)), "n40");
        assert_eq!(said(number(42)), "n40 n2");
        assert_eq!(said(number(100)), "n1 hundred");
        assert_eq!(said(number(105)), "n1 hundred and n5");
        assert_eq!(said(number(999)), "n9 hundred and n90 n9");
        assert_eq!(said(number(1005)), "n1 thousand and n5");
        assert_eq!(said(number(12_345)), "n12 thousand n3 hundred and n40 n5");
        assert_eq!(said(number(2_000_019)), "n2 million and n19");
        assert_eq!(said(number(1_000_000_000)), "n1 n0 n0 n0 n0 n0 n0 n0 n0 n0");
    }

    #[test]
    fn amounts_with_their_units() {
        let gbp = |minor| amount(Money::from_minor(minor, Currency::GBP));
        assert_eq!(said(gbp(1250)), "n12 pounds and n50 pence");
        assert_eq!(said(gbp(100)), "n1 pound");
        assert_eq!(said(gbp(1)), "n1 penny");
        assert_eq!(said(gbp(0)), "n0 pounds");
        assert_eq!(said(amount(Money::from_minor(101, Currency::USD))), "n1 dollar and n1 cent");
        assert_eq!(
            said(amount(Money::from_minor(2599, Currency::EUR))),
            "n20 n5 euros and n90 n9 cents"
        );
        // No unit words for yen: the number alone.
        assert_eq!(said(amount(Money::from_minor(1500, Currency::JPY))), "n1 thousand n5 hundred");
    }

    #[test]
    fn digits_one_by_one() {
        assert_eq!(said(digits("4242")), "n4 n2 n4 n2");
        assert_eq!(said(digits("12 3#")), "n1 n2 n3");
    }
}
