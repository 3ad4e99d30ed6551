//! A day of sandbox payments and refunds: the ledger sink's journal balances entry by entry
//! and as a whole, card clearing nets to payments minus refunds, and the settlement report's
//! totals match the payments taken.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::{CardData, Cvv, Expiry, Pan, PostalCode};
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_payments::{ChargeOutcome, ChargeRequest, Gateway, RefundRequest};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunPayment, BegunRefund, Currency, DeliveryFilter, IdempotencyKey, Money, NewPayment,
    NewRefund, NewSink, PaymentOutcome, PaymentStatus, RefundOutcome,
};
use ivrpay_sync::api::{self, ReportQuery};
use ivrpay_sync::{SyncMetrics, ledger};

use crate::support::{fast, now, start, tenant, wait_for};

crate::on_both!(a_day_of_sandbox_payments_balances_and_reports);

fn card(pan: &str) -> CardData {
    let cvv = if pan.starts_with("37") { "1234" } else { "123" };
    CardData {
        pan: Pan::parse(pan).expect("test card"),
        expiry: Expiry::new(12, 2030).expect("expiry"),
        cvv: Some(Cvv::parse(cvv).expect("cvv")),
        postal_code: Some(PostalCode::parse("94107").expect("postal code")),
    }
}

async fn a_day_of_sandbox_payments_balances_and_reports(db: &TestDatabase) {
    let s = db.store();
    let t = tenant(s).await;
    let ledger_sink = NewSink {
        tenant_id: t.clone(),
        kind: "ledger".to_owned(),
        name: "ledger".to_owned(),
        event_types: vec!["payment.succeeded".to_owned(), "refund.succeeded".to_owned()],
        config: serde_json::json!({}),
    };
    s.add_sink(&ledger_sink, now()).await.expect("ledger sink");
    let metrics = Arc::new(SyncMetrics::default());
    let handle = start(s, fast(), Duration::from_secs(5), &metrics);
    let gateway = Sandbox::new();
    let cards = ["4242424242424242", "5555555555554444", "378282246310005", "4000000000000002"];
    let currencies = [Currency::USD, Currency::EUR];
    // Expected totals per (currency, brand): (count, gross, refunds).
    let mut expected: BTreeMap<(String, String), (u64, i64, i64)> = BTreeMap::new();
    let (mut entries, mut clearing_net) = (0_usize, BTreeMap::<String, i64>::new());
    for i in 0..40_u64 {
        let c = card(cards[(i % 4) as usize]);
        let currency = currencies[(i % 2) as usize];
        let amount = Money::from_minor(500 + 137 * i, currency);
        let new = NewPayment {
            tenant_id: t.clone(),
            idempotency_key: IdempotencyKey::new(format!("day-{i}")).expect("key"),
            amount,
            description: Some(format!("invoice {i}")),
            session_id: None,
            call_id: None,
            token_id: None,
            card: Some(c.masked().into()),
            gateway: "sandbox".to_owned(),
        };
        let BegunPayment::Pending(pending) = s.begin_payment(&new, now()).await.expect("begin")
        else {
            panic!("new key")
        };
        let key = IdempotencyKey::new(pending.gateway_idempotency_key()).expect("gateway key");
        let request = ChargeRequest {
            idempotency_key: &key,
            amount,
            card: &c,
            description: "invoice",
            customer_reference: None,
        };
        let outcome = match gateway.charge(&request).await.expect("sandbox answers") {
            ChargeOutcome::Succeeded(ch) => PaymentOutcome::Succeeded { gateway_ref: ch.charge_id },
            ChargeOutcome::Declined(d) => PaymentOutcome::Declined {
                gateway_ref: None,
                code: d.gateway_code.unwrap_or_else(|| "declined".to_owned()),
                message: None,
            },
        };
        let record = s.record_payment_result(pending, &outcome, now()).await.expect("record");
        if record.status != PaymentStatus::Succeeded {
            continue;
        }
        let brand = record.brand.clone().expect("brand");
        let minor = record.amount_minor;
        let row = expected.entry((currency.code().to_owned(), brand.clone())).or_default();
        row.0 += 1;
        row.1 += minor;
        entries += 1;
        *clearing_net.entry(currency.code().to_owned()).or_default() += minor;
        if i % 3 == 0 {
            // A partial refund of a third of the payments.
            let refund_amount =
                Money::from_minor(u64::try_from(minor / 4).expect("amount"), currency);
            let new = NewRefund {
                tenant_id: t.clone(),
                payment_id: record.id.clone(),
                idempotency_key: IdempotencyKey::new(format!("day-{i}-refund")).expect("key"),
                amount: refund_amount,
                reason: Some("goodwill".to_owned()),
            };
            let BegunRefund::Pending(pending) =
                s.begin_refund(&new, now()).await.expect("begin refund")
            else {
                panic!("new key")
            };
            let rkey = IdempotencyKey::new(pending.gateway_idempotency_key()).expect("key");
            let charge = record.gateway_ref.clone().expect("charge id");
            let refunded = gateway
                .refund(&RefundRequest {
                    idempotency_key: &rkey,
                    charge_id: &charge,
                    amount: Some(refund_amount),
                })
                .await
                .expect("sandbox refunds");
            let outcome = RefundOutcome::Succeeded { gateway_ref: refunded.refund_id };
            s.record_refund_result(pending, &outcome, now()).await.expect("record refund");
            row.2 += minor / 4;
            entries += 1;
            *clearing_net.entry(currency.code().to_owned()).or_default() -= minor / 4;
        }
    }
    let pending =
        DeliveryFilter { status: Some("delivered".to_owned()), limit: 1000, ..Default::default() };
    assert!(
        wait_for(Duration::from_secs(20), || async {
            s.list_deliveries(&t, &pending).await.expect("list").len() == entries
        })
        .await,
        "every payment and refund reached the ledger"
    );
    handle.stop(Duration::from_secs(5)).await;

    let date = now().to_string()[..10].to_owned();
    let (from, to) = ivrpay_sync::report::day_bounds(&date).expect("today");
    let lines = s.ledger_lines(&t, from, to).await.expect("journal");
    assert_eq!(lines.len(), entries * 2, "one two-line entry per payment and refund");
    let mut per_entry: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for l in &lines {
        let e = per_entry.entry(l.id.to_string()).or_default();
        e.0 += l.debit_minor;
        e.1 += l.credit_minor;
    }
    assert!(per_entry.values().all(|(d, c)| d == c), "every entry balances");
    let balances = ledger::balances(&lines);
    for (currency, net) in &clearing_net {
        let (d, c) = balances[&("1200 Card clearing".to_owned(), currency.clone())];
        assert_eq!(d - c, *net, "clearing nets to payments - refunds in {currency}");
        let (rd, rc) = balances[&("1100 Accounts receivable".to_owned(), currency.clone())];
        assert_eq!(d + rd, c + rc, "debits equal credits in {currency}");
    }
    let csv = ledger::to_csv(&lines);
    assert_eq!(csv.lines().count(), lines.len() + 1);

    let json = api::settlement_report(s, &t, &ReportQuery { date: date.clone(), format: None })
        .await
        .expect("report");
    assert_eq!(json.content_type, "application/json");
    let report: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    let mut seen = 0;
    for c in report["currencies"].as_array().expect("currencies") {
        let code = c["currency"].as_str().expect("code");
        for b in c["brands"].as_array().expect("brands") {
            let key = (code.to_owned(), b["brand"].as_str().expect("brand").to_owned());
            let (count, gross, refunds) = expected[&key];
            assert_eq!(b["count"], count, "{key:?}");
            assert_eq!(b["gross_minor"], gross, "{key:?}");
            assert_eq!(b["refunds_minor"], refunds, "{key:?}");
            assert_eq!(b["net_minor"], gross - refunds, "{key:?}");
            seen += 1;
        }
        let gross: i64 =
            expected.iter().filter(|((cur, _), _)| cur == code).map(|(_, v)| v.1).sum();
        assert_eq!(c["gross_minor"], gross);
    }
    assert_eq!(seen, expected.len());
    assert!(!expected.keys().any(|(_, brand)| brand == "unknown"));
    let payments = report["payments"].as_array().expect("lines").len();
    assert_eq!(
        payments as u64,
        expected.values().map(|v| v.0).sum::<u64>(),
        "declines are not in the report"
    );
    let csv = api::settlement_report(s, &t, &ReportQuery { date, format: Some("csv".to_owned()) })
        .await
        .expect("csv");
    assert!(csv.body.starts_with("record,date,currency,brand,count,gross"));
    assert_eq!(csv.body.lines().filter(|l| l.starts_with("payment,")).count(), payments);
    println!(
        "ledger: {entries} entries, {} journal lines, balanced; report: {payments} payments",
        lines.len()
    );
}
