//! The daily settlement report: per currency and, within it, per card brand: payment count,
//! gross, refunds, net; with the payment and refund lines. Pure: the store's rows of one UTC
//! day in, the report out, as JSON (amounts in minor units) or CSV (amounts in major units).
//!
//! A payment counts on the day its success was recorded, a refund on the day it was; net is
//! gross minus refunds of that day, whatever day the refunded payment was taken (the way an
//! acquirer's daily batch nets them).

use std::collections::BTreeMap;

use ivrpay_store::{SettledPayment, SettledRefund, Timestamp};

use crate::csv::{major, record};

/// Totals for one brand or one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Payments captured.
    pub count: u64,
    /// Their sum, minor units.
    pub gross_minor: i64,
    /// Refunds made.
    pub refund_count: u64,
    /// Their sum, minor units.
    pub refunds_minor: i64,
    /// `gross - refunds`.
    pub net_minor: i64,
}

impl Totals {
    fn payment(&mut self, amount: i64) {
        self.count += 1;
        self.gross_minor = self.gross_minor.saturating_add(amount);
        self.net_minor = self.gross_minor.saturating_sub(self.refunds_minor);
    }

    fn refund(&mut self, amount: i64) {
        self.refund_count += 1;
        self.refunds_minor = self.refunds_minor.saturating_add(amount);
        self.net_minor = self.gross_minor.saturating_sub(self.refunds_minor);
    }
}

/// One brand's totals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrandTotals {
    /// `visa`, `mastercard`, … (`unknown` without a card summary).
    pub brand: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// One currency's totals and its brands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrencyTotals {
    /// ISO 4217.
    pub currency: String,
    /// All brands together.
    #[serde(flatten)]
    pub totals: Totals,
    /// Per brand, by name.
    pub brands: Vec<BrandTotals>,
}

/// The report of one day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SettlementReport {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Whose.
    pub tenant_id: String,
    /// Per currency, by code.
    pub currencies: Vec<CurrencyTotals>,
    /// The payments captured that day.
    pub payments: Vec<SettledPayment>,
    /// The refunds made that day.
    pub refunds: Vec<SettledRefund>,
}

/// `YYYY-MM-DD` to the UTC day `[start, end)`; `None` unless it is a real date.
#[must_use]
pub fn day_bounds(date: &str) -> Option<(Timestamp, Timestamp)> {
    let bytes = date.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i64 = date.get(0..4)?.parse().ok()?;
    let month: u32 = date.get(5..7)?.parse().ok()?;
    let day: u32 = date.get(8..10)?.parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Days from the epoch (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let start = days.checked_mul(86_400_000)?;
    Some((Timestamp::from_unix_ms(start), Timestamp::from_unix_ms(start + 86_400_000)))
}

fn brand_of(brand: Option<&String>) -> String {
    brand.filter(|b| !b.is_empty()).cloned().unwrap_or_else(|| "unknown".to_owned())
}

/// Builds the report of `date` from that day's rows.
#[must_use]
pub fn build(
    date: &str,
    tenant_id: &str,
    payments: Vec<SettledPayment>,
    refunds: Vec<SettledRefund>,
) -> SettlementReport {
    let mut by: BTreeMap<String, (Totals, BTreeMap<String, Totals>)> = BTreeMap::new();
    for p in &payments {
        let (total, brands) = by.entry(p.currency.clone()).or_default();
        total.payment(p.amount_minor);
        brands.entry(brand_of(p.brand.as_ref())).or_default().payment(p.amount_minor);
    }
    for r in &refunds {
        let (total, brands) = by.entry(r.currency.clone()).or_default();
        total.refund(r.amount_minor);
        brands.entry(brand_of(r.brand.as_ref())).or_default().refund(r.amount_minor);
    }
    let currencies = by
        .into_iter()
        .map(|(currency, (totals, brands))| CurrencyTotals {
            currency,
            totals,
            brands: brands
                .into_iter()
                .map(|(brand, totals)| BrandTotals { brand, totals })
                .collect(),
        })
        .collect();
    SettlementReport {
        date: date.to_owned(),
        tenant_id: tenant_id.to_owned(),
        currencies,
        payments,
        refunds,
    }
}

fn exponent(code: &str) -> u8 {
    ivrpay_card::Currency::from_code(code).map_or(2, |c| c.exponent())
}

impl SettlementReport {
    /// As JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// As CSV: one `total` row per currency, one `brand` row per brand, then one `payment` or
    /// `refund` row per line; amounts in major units.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        record(
            &mut out,
            &[
                "record",
                "date",
                "currency",
                "brand",
                "count",
                "gross",
                "refund_count",
                "refunds",
                "net",
                "id",
                "payment_id",
                "time",
                "last4",
                "gateway_ref",
                "amount",
            ],
        );
        let totals_row = |out: &mut String, kind: &str, currency: &str, brand: &str, t: &Totals| {
            let e = exponent(currency);
            record(
                out,
                &[
                    kind,
                    &self.date,
                    currency,
                    brand,
                    &t.count.to_string(),
                    &major(t.gross_minor, e),
                    &t.refund_count.to_string(),
                    &major(t.refunds_minor, e),
                    &major(t.net_minor, e),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ],
            );
        };
        for c in &self.currencies {
            totals_row(&mut out, "total", &c.currency, "", &c.totals);
            for b in &c.brands {
                totals_row(&mut out, "brand", &c.currency, &b.brand, &b.totals);
            }
        }
        for p in &self.payments {
            let time = Timestamp::from_unix_ms(p.captured_at_ms).to_string();
            record(
                &mut out,
                &[
                    "payment",
                    &self.date,
                    &p.currency,
                    &brand_of(p.brand.as_ref()),
                    "",
                    "",
                    "",
                    "",
                    "",
                    &p.payment_id,
                    &p.payment_id,
                    &time,
                    p.last4.as_deref().unwrap_or(""),
                    p.gateway_ref.as_deref().unwrap_or(""),
                    &major(p.amount_minor, exponent(&p.currency)),
                ],
            );
        }
        for r in &self.refunds {
            let time = Timestamp::from_unix_ms(r.refunded_at_ms).to_string();
            record(
                &mut out,
                &[
                    "refund",
                    &self.date,
                    &r.currency,
                    &brand_of(r.brand.as_ref()),
                    "",
                    "",
                    "",
                    "",
                    "",
                    &r.refund_id,
                    &r.payment_id,
                    &time,
                    r.last4.as_deref().unwrap_or(""),
                    r.gateway_ref.as_deref().unwrap_or(""),
                    &major(r.amount_minor, exponent(&r.currency)),
                ],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn payment(id: usize, brand: &str, currency: &str, amount: i64) -> SettledPayment {
        SettledPayment {
            payment_id: format!("pay_{id}"),
            captured_at_ms: 0,
            amount_minor: amount,
            currency: currency.to_owned(),
            brand: Some(brand.to_owned()),
            last4: Some("4242".to_owned()),
            gateway: "sandbox".to_owned(),
            gateway_ref: None,
            call_id: None,
            description: None,
        }
    }

    #[test]
    fn day_bounds_are_utc_days() {
        let (start, end) = day_bounds("2000-02-29").expect("leap day");
        assert_eq!(start.to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(end.to_string(), "2000-03-01T00:00:00.000Z");
        for bad in ["2001-02-29", "2024-13-01", "2024-1-01", "20240101", "2024-01-00", "abcd-ef-gh"]
        {
            assert!(day_bounds(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn csv_has_totals_brands_and_lines() {
        let r = build(
            "2026-01-02",
            "ten_a",
            vec![payment(1, "visa", "USD", 1250), payment(2, "amex", "USD", 100)],
            vec![],
        );
        let csv = r.to_csv();
        assert!(csv.contains("total,2026-01-02,USD,,2,13.50,0,0.00,13.50"), "{csv}");
        assert!(csv.contains("brand,2026-01-02,USD,visa,1,12.50"), "{csv}");
        assert_eq!(csv.lines().filter(|l| l.starts_with("payment,")).count(), 2);
    }

    proptest! {
        /// Brand rows add up to the currency row; net is gross minus refunds; every line counts.
        #[test]
        fn totals_add_up(pays in proptest::collection::vec((0_usize..3, 0_usize..2, 1_i64..1_000_000), 0..40),
                         refunds in proptest::collection::vec((0_usize..3, 0_usize..2, 1_i64..1_000_000), 0..10)) {
            let brands = ["visa", "mastercard", "amex"];
            let currencies = ["USD", "EUR"];
            let p: Vec<_> = pays.iter().enumerate().map(|(i, (b, c, a))| payment(i, brands[*b], currencies[*c], *a)).collect();
            let r: Vec<_> = refunds.iter().enumerate().map(|(i, (b, c, a))| SettledRefund {
                refund_id: format!("rfd_{i}"), payment_id: "pay_0".to_owned(), refunded_at_ms: 0, amount_minor: *a,
                currency: currencies[*c].to_owned(), brand: Some(brands[*b].to_owned()), last4: None, gateway_ref: None,
            }).collect();
            let report = build("2026-01-01", "ten_a", p.clone(), r.clone());
            let mut count = 0;
            for c in &report.currencies {
                let sum = |f: fn(&Totals) -> i64| c.brands.iter().map(|b| f(&b.totals)).sum::<i64>();
                prop_assert_eq!(sum(|t| t.gross_minor), c.totals.gross_minor);
                prop_assert_eq!(sum(|t| t.refunds_minor), c.totals.refunds_minor);
                prop_assert_eq!(c.totals.net_minor, c.totals.gross_minor - c.totals.refunds_minor);
                count += c.totals.count;
            }
            prop_assert_eq!(count as usize, p.len());
            let gross: i64 = report.currencies.iter().map(|c| c.totals.gross_minor).sum();
            prop_assert_eq!(gross, p.iter().map(|x| x.amount_minor).sum::<i64>());
        }
    }
}
