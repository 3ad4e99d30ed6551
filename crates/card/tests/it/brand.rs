//! The brand table, written out again from research/payments.md §6 and checked against the
//! crate's table: every range boundary, the digit just outside it, PAN and CVV lengths.

use ivrpay_card::{Brand, Detection, luhn_check_digit};

/// A Luhn-valid number of `len` digits starting with `prefix`.
fn number(prefix: &str, len: usize) -> String {
    let mut body = prefix.to_string();
    while body.len() < len - 1 {
        body.push('0');
    }
    let c = luhn_check_digit(body.as_bytes()).expect("digits");
    body.push(char::from(c));
    body
}

/// (first digits, brand by the longest prefix) from the research table.
const RESEARCH_TABLE: &[(&str, Option<Brand>)] = &[
    // Visa: 4.
    ("4", Some(Brand::Visa)),
    ("49", Some(Brand::Visa)),
    ("493698", Some(Brand::Visa)), // Braintree's Maestro range is left out on purpose
    // Mastercard 51-55 and 222100-272099.
    ("51", Some(Brand::Mastercard)),
    ("55", Some(Brand::Mastercard)),
    ("222100", Some(Brand::Mastercard)),
    ("222099", None),
    ("223000", Some(Brand::Mastercard)),
    ("259999", Some(Brand::Mastercard)),
    ("270000", Some(Brand::Mastercard)),
    ("272099", Some(Brand::Mastercard)),
    ("272100", None),
    // Amex 34, 37.
    ("34", Some(Brand::Amex)),
    ("37", Some(Brand::Amex)),
    ("35", None),
    ("33", None),
    // Discover 6011, 644-649, 65 (beating Maestro's 6).
    ("6011", Some(Brand::Discover)),
    ("6012", Some(Brand::Maestro)),
    ("644", Some(Brand::Discover)),
    ("649", Some(Brand::Discover)),
    ("643", Some(Brand::Maestro)),
    ("65", Some(Brand::Discover)),
    // JCB 3528-3589, Braintree's 2131 and 1800.
    ("3528", Some(Brand::Jcb)),
    ("3589", Some(Brand::Jcb)),
    ("3527", None),
    ("3590", None),
    ("2131", Some(Brand::Jcb)),
    ("1800", Some(Brand::Jcb)),
    ("1801", None),
    // Diners Club 300-305, 3095, 36, 38, 39.
    ("300", Some(Brand::DinersClub)),
    ("305", Some(Brand::DinersClub)),
    ("306", None),
    ("3095", Some(Brand::DinersClub)),
    ("3096", None),
    ("36", Some(Brand::DinersClub)),
    ("38", Some(Brand::DinersClub)),
    ("39", Some(Brand::DinersClub)),
    // UnionPay 62, 810-8171.
    ("62", Some(Brand::UnionPay)),
    ("6270", Some(Brand::UnionPay)),
    ("810", Some(Brand::UnionPay)),
    ("816", Some(Brand::UnionPay)),
    ("8171", Some(Brand::UnionPay)),
    ("8172", None),
    ("818", None),
    // Maestro 50, 56-59, 6 (catch-all), 63, 67.
    ("50", Some(Brand::Maestro)),
    ("508999", Some(Brand::Maestro)),
    ("56", Some(Brand::Maestro)),
    ("59", Some(Brand::Maestro)),
    ("63", Some(Brand::Maestro)),
    ("67", Some(Brand::Maestro)),
    ("61", Some(Brand::Maestro)),
    // Nobody.
    ("0", None),
    ("7", None),
    ("9", None),
    ("31", None),
];

#[test]
fn every_research_prefix_gives_its_brand() {
    for &(prefix, brand) in RESEARCH_TABLE {
        let n = number(prefix, 16);
        assert_eq!(Brand::of_pan(n.as_bytes()), brand, "prefix {prefix}");
    }
}

#[test]
fn lengths_and_security_codes_match_the_research_table() {
    use Brand::*;
    let table: &[(Brand, std::ops::RangeInclusive<usize>, usize)] = &[
        (Visa, 13..=19, 3),
        (Mastercard, 16..=16, 3),
        (Amex, 15..=15, 4),
        (Discover, 16..=19, 3),
        (Jcb, 16..=19, 3),
        (DinersClub, 14..=19, 3),
        (UnionPay, 14..=19, 3),
        (Maestro, 12..=19, 3),
    ];
    assert_eq!(table.len(), Brand::ALL.len());
    for (brand, lengths, cvv) in table {
        assert_eq!(&brand.pan_lengths(), lengths, "{brand}");
        assert_eq!(brand.cvv_len(), *cvv, "{brand}");
        assert!(lengths.contains(&brand.usual_pan_length()), "{brand}");
        let groups: usize = brand.grouping(*lengths.start()).iter().sum();
        assert_eq!(groups, *lengths.start());
    }
}

#[test]
fn stripe_test_cards_have_their_brands() {
    let cards = [
        ("4242424242424242", Brand::Visa),
        ("4000056655665556", Brand::Visa),
        ("5555555555554444", Brand::Mastercard),
        ("2223003122003222", Brand::Mastercard),
        ("5105105105105100", Brand::Mastercard),
        ("378282246310005", Brand::Amex),
        ("371449635398431", Brand::Amex),
        ("6011111111111117", Brand::Discover),
        ("6011000990139424", Brand::Discover),
        ("3566002020360505", Brand::Jcb),
        ("3056930009020004", Brand::DinersClub),
        ("36227206271667", Brand::DinersClub),
        ("6200000000000005", Brand::UnionPay),
    ];
    for (pan, brand) in cards {
        assert_eq!(Brand::of_pan(pan.as_bytes()), Some(brand), "{pan}");
        assert!(ivrpay_card::luhn_valid(pan.as_bytes()), "{pan}");
        assert!(brand.pan_lengths().contains(&pan.len()), "{pan}");
    }
}

#[test]
fn brand_is_known_as_soon_as_the_digits_decide_it() {
    let d = |s: &str| Brand::detect(s.as_bytes());
    assert_eq!(d(""), Detection::Pending);
    assert_eq!(d("4"), Detection::Known(Brand::Visa));
    assert_eq!(d("5"), Detection::Pending); // Maestro 50/56-59 or Mastercard 51-55
    assert_eq!(d("51"), Detection::Known(Brand::Mastercard));
    assert_eq!(d("50"), Detection::Known(Brand::Maestro));
    assert_eq!(d("3"), Detection::Pending);
    assert_eq!(d("37"), Detection::Known(Brand::Amex));
    assert_eq!(d("35"), Detection::Pending); // 3528-3589 JCB, 3500-3527 nobody
    assert_eq!(d("352"), Detection::Pending);
    assert_eq!(d("3528"), Detection::Known(Brand::Jcb));
    assert_eq!(d("353"), Detection::Known(Brand::Jcb));
    assert_eq!(d("351"), Detection::Unknown);
    assert_eq!(d("30"), Detection::Pending); // 300-305 and 3095 Diners, the rest nobody
    assert_eq!(d("301"), Detection::Known(Brand::DinersClub));
    assert_eq!(d("31"), Detection::Unknown);
    assert_eq!(d("6"), Detection::Pending); // Maestro unless Discover or UnionPay follows
    assert_eq!(d("60"), Detection::Pending); // 6011 Discover, else Maestro
    assert_eq!(d("601"), Detection::Pending);
    assert_eq!(d("6011"), Detection::Known(Brand::Discover));
    assert_eq!(d("6012"), Detection::Known(Brand::Maestro));
    assert_eq!(d("61"), Detection::Known(Brand::Maestro));
    assert_eq!(d("64"), Detection::Pending);
    assert_eq!(d("645"), Detection::Known(Brand::Discover));
    assert_eq!(d("62"), Detection::Known(Brand::UnionPay));
    assert_eq!(d("2"), Detection::Pending); // JCB 2131 or Mastercard 2221-2720
    assert_eq!(d("22"), Detection::Pending); // 2221-2299 Mastercard, 2200-2220 nobody
    assert_eq!(d("23"), Detection::Known(Brand::Mastercard));
    assert_eq!(d("27"), Detection::Pending); // 2700-2720 Mastercard, 2721- nobody
    assert_eq!(d("271"), Detection::Known(Brand::Mastercard));
    assert_eq!(d("273"), Detection::Unknown);
    assert_eq!(d("8"), Detection::Pending);
    assert_eq!(d("81"), Detection::Pending);
    assert_eq!(d("813"), Detection::Known(Brand::UnionPay));
    assert_eq!(d("817"), Detection::Pending);
    assert_eq!(d("8171"), Detection::Known(Brand::UnionPay));
    assert_eq!(d("8172"), Detection::Unknown);
    assert_eq!(d("9"), Detection::Unknown);
    assert_eq!(d("4x"), Detection::Unknown);
}

#[test]
fn detection_agrees_with_the_full_number() {
    // Whatever detection says part-way, the full number must not contradict it.
    for &(prefix, brand) in RESEARCH_TABLE {
        let n = number(prefix, 16);
        for k in 1..=n.len() {
            match Brand::detect(&n.as_bytes()[..k]) {
                Detection::Known(b) => {
                    assert_eq!(Some(b), brand, "{prefix}: known {b} after {k} digits")
                }
                Detection::Unknown => assert_eq!(brand, None, "{prefix}: unknown after {k}"),
                // The longest prefix has four digits: after that the brand is decided.
                Detection::Pending => assert!(k < 4, "{prefix}: still pending after {k}"),
            }
        }
    }
}
