//! Every constructor's errors.

use ivrpay_card::{
    AmountError, Brand, Cvv, CvvError, Expiry, ExpiryError, Money, Pan, PanError, PostalCode,
    PostalCodeError, YearMonth,
};

#[test]
fn pan() {
    let pan = Pan::parse("4242424242424242").expect("valid");
    assert_eq!(pan.len(), 16);
    assert_eq!(pan.last4().as_str(), "4242");
    assert_eq!(pan.bin().as_str(), "424242");
    assert_eq!(pan.brand(), Some(Brand::Visa));
    assert!(pan.is_luhn_valid() && pan.fits_brand(Brand::Visa) && !pan.fits_brand(Brand::Amex));
    assert_eq!(pan.expose(), "4242424242424242");

    // Shape only: Luhn is a separate question.
    assert!(!Pan::parse("4242424242424241").expect("shape ok").is_luhn_valid());
    assert_eq!(Pan::parse("42424242424").err(), Some(PanError::Length { len: 11 }));
    assert_eq!(Pan::parse("42424242424242424242").err(), Some(PanError::Length { len: 20 }));
    assert_eq!(Pan::parse("").err(), Some(PanError::Length { len: 0 }));
    assert_eq!(Pan::parse("4242 4242 4242 4242").err(), Some(PanError::NotDigits));
    assert_eq!(Pan::parse("424242424242424x").err(), Some(PanError::NotDigits));
    assert_eq!(Pan::parse("４２４２４２４２４２４２").err(), Some(PanError::NotDigits));
    assert!(Pan::parse("123456789012").is_ok());
    assert!(Pan::parse("1234567890123456789").is_ok());
}

#[test]
fn masked_forms() {
    let m = |s: &str| Pan::parse(s).expect("valid").masked().to_string();
    assert_eq!(m("4242424242424242"), "•••• •••• •••• 4242");
    assert_eq!(m("378282246310005"), "•••• •••••• •0005");
    assert_eq!(m("36227206271667"), "•••• •••••• 1667");
    assert_eq!(m("4000000000000000003"), "•••• •••• •••• •••0 003");
    assert_eq!(m("4222222222222"), "•••• •••• •222 2");
    let masked = Pan::parse("5555555555554444").expect("valid").masked();
    assert_eq!(masked.brand(), Some(Brand::Mastercard));
    assert_eq!(masked.last4().as_str(), "4444");
}

#[test]
fn cvv() {
    assert_eq!(Cvv::parse("123").expect("valid").len(), 3);
    let amex = Cvv::parse("1234").expect("valid");
    assert!(amex.fits_brand(Brand::Amex) && !amex.fits_brand(Brand::Visa));
    assert_eq!(amex.expose(), "1234");
    assert_eq!(Cvv::parse("12").err(), Some(CvvError::Length { len: 2 }));
    assert_eq!(Cvv::parse("12345").err(), Some(CvvError::Length { len: 5 }));
    assert_eq!(Cvv::parse("").err(), Some(CvvError::Length { len: 0 }));
    assert_eq!(Cvv::parse("12a").err(), Some(CvvError::NotDigits));
}

#[test]
fn expiry() {
    let today = YearMonth::new(2026, 5).expect("valid");
    let e = Expiry::from_mmyy(b"1230").expect("valid");
    assert_eq!((e.month(), e.year()), (12, 2030));
    assert_eq!(e.mmyy().to_string(), "12/30");
    assert_eq!(Expiry::from_mmyy(b"0526").expect("valid").check(today).map(|e| e.month()), Ok(5));
    assert_eq!(
        Expiry::from_mmyy(b"0426").expect("valid").check(today).err(),
        Some(ExpiryError::Past)
    );
    assert!(Expiry::from_mmyy(b"1225").expect("valid").is_expired(today));
    assert!(!Expiry::from_mmyy(b"0127").expect("valid").is_expired(today));
    assert_eq!(Expiry::from_mmyy(b"1330").err(), Some(ExpiryError::Month));
    assert_eq!(Expiry::from_mmyy(b"0030").err(), Some(ExpiryError::Month));
    assert_eq!(Expiry::from_mmyy(b"123").err(), Some(ExpiryError::Malformed));
    assert_eq!(Expiry::from_mmyy(b"12305").err(), Some(ExpiryError::Malformed));
    assert_eq!(Expiry::from_mmyy(b"12/3").err(), Some(ExpiryError::Malformed));
    assert_eq!(Expiry::new(6, 2031).map(|e| e.year()), Ok(2031));
    assert_eq!(Expiry::new(6, 31).map(|e| e.year()), Ok(2031));
    assert_eq!(Expiry::new(6, 2100).err(), Some(ExpiryError::Year));
    assert_eq!(Expiry::new(6, 1999).err(), Some(ExpiryError::Year));
    assert_eq!(YearMonth::new(2026, 13).err(), Some(ExpiryError::Month));
}

#[test]
fn postal_code() {
    assert_eq!(PostalCode::parse("94107").expect("valid").expose(), "94107");
    assert!(PostalCode::parse("SW1A1AA").is_ok());
    assert_eq!(PostalCode::parse("").err(), Some(PostalCodeError::Length { len: 0 }));
    assert_eq!(PostalCode::parse("12345678901").err(), Some(PostalCodeError::Length { len: 11 }));
    assert_eq!(PostalCode::parse("SW1A 1AA").err(), Some(PostalCodeError::Characters));
}

#[test]
fn money_errors() {
    let usd = ivrpay_card::Currency::USD;
    assert_eq!(Money::parse_major("1.999", usd), Err(AmountError::TooPrecise { exponent: 2 }));
    assert_eq!(Money::parse_major("abc", usd), Err(AmountError::Malformed));
}
