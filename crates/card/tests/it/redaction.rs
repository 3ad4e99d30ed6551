//! No secret-bearing type prints its digits, through `Debug` (plain and pretty) or
//! `Display` (STYLE.md rule 6).

use ivrpay_card::{AsciiBuf, CardData, Cvv, Expiry, Pan, PostalCode, Secret};

const PAN: &str = "4000056655665556";
const CVV: &str = "739";
const POSTAL: &str = "94107";

fn assert_clean(what: &str, shown: &str) {
    // No run of 3+ digits from the secrets, and never the PAN's last four either: a secret
    // type's Debug shows no digit at all.
    assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{what} printed digits: {shown}");
    for secret in [PAN, CVV, POSTAL, "5556", "0526", "05/26"] {
        assert!(!shown.contains(secret), "{what} printed {secret}: {shown}");
    }
}

#[test]
fn debug_and_display_of_every_secret_bearing_type() {
    let pan = Pan::parse(PAN).expect("valid");
    let cvv = Cvv::parse(CVV).expect("valid");
    let expiry = Expiry::from_mmyy(b"0526").expect("valid");
    let postal = PostalCode::parse(POSTAL).expect("valid");
    assert_clean("Pan", &format!("{pan:?} {pan:#?}"));
    assert_clean("Cvv", &format!("{cvv:?} {cvv:#?}"));
    assert_clean("Expiry", &format!("{expiry:?} {expiry:#?} {:?}", expiry.mmyy()));
    assert_clean("PostalCode", &format!("{postal:?} {postal:#?}"));

    let secret = Secret::new(AsciiBuf::<19>::from_slice(PAN.as_bytes()).expect("fits"));
    assert_clean("Secret", &format!("{secret:?} {secret:#?} {secret}"));
    assert_clean("AsciiBuf", &format!("{:?}", secret.expose()).replace("16 bytes", ""));

    let card = CardData { pan, expiry, cvv: Some(cvv), postal_code: Some(postal) };
    assert_clean("CardData", &format!("{card:?} {card:#?}"));

    // The errors carry no digits either (lengths only).
    let err = Pan::parse("4000x56655665556").expect_err("not digits");
    assert_clean("PanError", &format!("{err:?} {err}"));
}

#[test]
fn panic_messages_show_nothing() {
    let card = CardData {
        pan: Pan::parse(PAN).expect("valid"),
        expiry: Expiry::from_mmyy(b"0526").expect("valid"),
        cvv: Some(Cvv::parse(CVV).expect("valid")),
        postal_code: None,
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        panic!("payment failed for {card:?}");
    }));
    let msg =
        caught.err().and_then(|p| p.downcast::<String>().ok()).map(|s| *s).unwrap_or_default();
    assert!(msg.starts_with("payment failed for CardData"), "{msg}");
    assert_clean("panic", &msg);
}
