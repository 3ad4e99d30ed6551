//! Receipts by email through a real SMTP server (aiosmtpd), by SMS and to a CRM through HTTP
//! templates. A receipt shows the brand and last four, never more of the card.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::NewSink;
use ivrpay_store::testing::TestDatabase;
use ivrpay_sync::SyncMetrics;
use serde_json::json;

use crate::support::{
    Mode, PythonServer, Receiver, fast, free_port, now, python_with, refund, start, tenant, usd,
    wait_for,
};

/// An SMTP server appending each message to a file as one JSON line; prints its port.
const SMTP: &str = r#"
import json, sys, time
from aiosmtpd.controller import Controller
path, port = sys.argv[1], int(sys.argv[2])
class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(path, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf-8", "replace")}) + "\n")
        return "250 Message accepted for delivery"
controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
while True:
    time.sleep(3600)
"#;

/// The longest run of digits: a PAN is 12 to 19 digits, so no receipt may hold a run of 12
/// (ids are base32 and may hold short runs; amounts have a decimal point).
fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_sms_and_crm() {
    let python = python_with("aiosmtpd", "aiosmtpd");
    let db = TestDatabase::sqlite().await.expect("fixture");
    let s = db.store();
    let t = tenant(s).await;
    let dir = db.dir().expect("dir").to_path_buf();
    let mail_log = dir.join("mail.jsonl");
    let port = free_port().port().to_string();
    let smtp = PythonServer::start(&python, SMTP, &[mail_log.to_str().expect("path"), &port]).await;
    let http = Receiver::start(Mode::Ok).await;
    let sink = |kind: &str, events: &[&str], config: serde_json::Value| NewSink {
        tenant_id: t.clone(),
        kind: kind.to_owned(),
        name: kind.to_owned(),
        event_types: events.iter().map(|e| (*e).to_owned()).collect(),
        config,
    };
    let receipts = ["payment.succeeded", "refund.succeeded"];
    let email = json!({"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "tls": "none",
        "from": "Acme Receipts <receipts@acme.test>", "to": "customer@example.test"});
    s.add_sink(&sink("email_receipt", &receipts, email), now()).await.expect("email sink");
    let sms =
        json!({"url": http.url("/sms"), "body": {"to": "+15550100", "text": "{{receipt.text}}"}});
    s.add_sink(&sink("sms_receipt", &["payment.succeeded"], sms), now()).await.expect("sms sink");
    let crm = json!({"method": "PUT", "url": http.url("/customers/{{data.description}}/payments/{{data.id}}"),
        "headers": {"x-event": "{{type}}"},
        "body": {"amount": "{{data.amount_minor}}", "currency": "{{data.currency}}", "reference": "{{data.gateway_ref}}"}});
    s.add_sink(&sink("crm", &["payment.succeeded"], crm), now()).await.expect("crm sink");

    let metrics = Arc::new(SyncMetrics::default());
    let handle = start(s, fast(), Duration::from_secs(5), &metrics);
    let p = usd(s, &t, "r1", 1250).await;
    refund(s, &p, "r1-refund", 250).await;
    let mails = || {
        std::fs::read_to_string(&mail_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("line"))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(20), || async {
            mails().len() == 2 && http.received().len() == 2
        })
        .await,
        "receipts sent"
    );
    handle.stop(Duration::from_secs(5)).await;

    let mails = mails();
    assert_eq!(mails[0]["to"], json!(["customer@example.test"]));
    let (paid, refunded) =
        (mails[0]["data"].as_str().expect("mail"), mails[1]["data"].as_str().expect("mail"));
    for text in [paid, refunded] {
        assert!(text.contains("visa ending 4242"), "{text}");
        assert!(!text.contains("42424242"), "no more of the PAN than the last four: {text}");
        assert!(longest_digit_run(text) < 12, "no PAN-like digit run: {text}");
        assert_eq!(text.matches("4242").count(), 1, "the last four, once: {text}");
        assert!(text.contains("Message-ID: <") || text.contains("Message-Id: <"), "{text}");
    }
    assert!(
        paid.contains("Subject: Payment receipt") && paid.contains("Amount: 12.50 USD"),
        "{paid}"
    );
    assert!(
        refunded.contains("Subject: Refund receipt") && refunded.contains("Amount: 2.50 USD"),
        "{refunded}"
    );

    let requests = http.received();
    let sms = requests.iter().find(|r| r.path == "/sms").expect("sms");
    let text = sms.json()["text"].as_str().expect("text").to_owned();
    assert!(text.contains("Card: visa ending 4242") && text.contains("12.50 USD"), "{text}");
    assert!(longest_digit_run(&text) < 12 && !text.contains("42424242"));
    let crm = requests.iter().find(|r| r.method == "PUT").expect("crm");
    assert_eq!(crm.path, format!("/customers/invoice%20r1/payments/{}", p.id));
    assert_eq!(crm.header("x-event"), Some("payment.succeeded"));
    assert_eq!(crm.header("idempotency-key").map(|k| k.starts_with("evt_")), Some(true));
    assert_eq!(crm.json(), json!({"amount": 1250, "currency": "USD", "reference": "ch_r1"}));
    smtp.stop().await;
    http.stop();
    db.cleanup().await.expect("cleanup");
}
