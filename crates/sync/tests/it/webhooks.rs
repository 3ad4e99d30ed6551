//! Webhooks: Standard Webhooks signatures checked by the `standardwebhooks` package (an
//! independent implementation), secret rotation, the SSRF guard, the endpoint API.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{DeliveryFilter, NewWebhookEndpoint};
use ivrpay_sync::api::{self, CreateEndpoint, DeliveryQuery};
use ivrpay_sync::sinks::{SinkOptions, SinkSet};
use ivrpay_sync::{Dispatcher, SyncMetrics, SystemClock};

use crate::support::{
    Mode, PythonServer, Receiver, fast, now, python_with, start, tenant, usd, wait_for,
};

crate::on_both!(signed_for_an_independent_verifier_through_a_rotation, endpoint_api);

/// A receiver verifying with `standardwebhooks.Webhook` against every secret listed in a
/// file (re-read per request, so the test can add the rotated one); it logs one JSON line
/// per request and answers 204 when any secret verifies, 401 otherwise.
const VERIFIER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from standardwebhooks.webhooks import Webhook
log_path, secrets_path = sys.argv[1], sys.argv[2]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        secrets = [s for s in open(secrets_path).read().split() if s]
        verified = []
        for s in secrets:
            try:
                Webhook(s).verify(body, dict(self.headers.items()))
                verified.append(True)
            except Exception:
                verified.append(False)
        with open(log_path, "a") as f:
            f.write(json.dumps({"id": self.headers["webhook-id"], "verified": verified, "body": body.decode()}) + "\n")
        self.send_response(204 if any(verified) else 401)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn verified_log(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line"))
        .collect()
}

async fn signed_for_an_independent_verifier_through_a_rotation(db: &TestDatabase) {
    let python = python_with("standardwebhooks", "standardwebhooks");
    let s = db.store();
    let t = tenant(s).await;
    let dir = tempfile_dir();
    let (log, secrets) = (dir.join("log.jsonl"), dir.join("secrets"));
    std::fs::write(&secrets, "").expect("secrets file");
    let server = PythonServer::start(
        &python,
        VERIFIER,
        &[log.to_str().expect("path"), secrets.to_str().expect("path")],
    )
    .await;
    let url = format!("http://127.0.0.1:{}/hooks", server.port);
    let request = CreateEndpoint {
        url,
        events: vec!["payment.succeeded".to_owned()],
        description: Some("orders".to_owned()),
    };
    let ep = api::create_webhook_endpoint(s, &t, request, true, now()).await.expect("create");
    let first = ep.secret.clone().expect("secret shown once");
    assert!(first.starts_with("whsec_"));
    std::fs::write(&secrets, &first).expect("secrets file");

    let metrics = Arc::new(SyncMetrics::default());
    let handle = start(s, fast(), Duration::from_secs(5), &metrics);
    let mut ids = HashSet::new();
    for i in 0..5 {
        let p = usd(s, &t, &format!("w{i}"), 1000 + i).await;
        ids.insert(
            s.events_since(&t, 0, 1000)
                .await
                .expect("feed")
                .iter()
                .find(|e| e.subject_id == p.id.as_str())
                .expect("event")
                .id
                .to_string(),
        );
    }
    assert!(
        wait_for(Duration::from_secs(20), || async { verified_log(&log).len() >= 5 }).await,
        "5 webhooks arrive"
    );
    for line in verified_log(&log) {
        assert_eq!(line["verified"], serde_json::json!([true]), "standardwebhooks verifies {line}");
        let body: serde_json::Value =
            serde_json::from_str(line["body"].as_str().expect("body")).expect("JSON");
        assert_eq!(body["type"], "payment.succeeded");
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(body["data"]["last4"], "4242");
        assert!(ids.contains(line["id"].as_str().expect("id")), "webhook-id is the event id");
    }

    // Rotation: for the overlap, every request carries both signatures.
    let rotated = api::rotate_webhook_secret(s, &t, &ep.id, Duration::from_millis(1500), now())
        .await
        .expect("rotate");
    let second = rotated.secret.expect("new secret");
    std::fs::write(&secrets, format!("{first}\n{second}")).expect("secrets file");
    tokio::time::sleep(Duration::from_millis(200)).await; // the sink set reloads (refresh 100 ms)
    usd(s, &t, "w-rot", 700).await;
    assert!(wait_for(Duration::from_secs(20), || async { verified_log(&log).len() >= 6 }).await);
    assert_eq!(
        verified_log(&log)[5]["verified"],
        serde_json::json!([true, true]),
        "both secrets verify"
    );
    // After the overlap, only the new secret signs.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    usd(s, &t, "w-after", 800).await;
    assert!(wait_for(Duration::from_secs(20), || async { verified_log(&log).len() >= 7 }).await);
    assert_eq!(
        verified_log(&log)[6]["verified"],
        serde_json::json!([false, true]),
        "the old secret expired"
    );
    handle.stop(Duration::from_secs(10)).await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ivrpay-sync-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

async fn endpoint_api(db: &TestDatabase) {
    let s = db.store();
    let t = tenant(s).await;
    let bad = |url: &str, events: &[&str]| CreateEndpoint {
        url: url.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: None,
    };
    for (req, field) in [
        (bad("http://127.0.0.1:9/", &["*"]), "url"),
        (bad("http://localhost/", &["*"]), "url"),
        (bad("https://hooks.example.com/", &["payment.done"]), "events"),
        (bad("https://hooks.example.com/", &[]), "events"),
    ] {
        match api::create_webhook_endpoint(s, &t, req, false, now()).await {
            Err(e @ api::ApiError::Invalid { .. }) => {
                assert_eq!(e.status(), 422);
                assert!(e.to_string().starts_with(field), "{e}");
            }
            other => panic!("expected 422, got {other:?}"),
        }
    }
    let ep = api::create_webhook_endpoint(
        s,
        &t,
        bad("https://hooks.example.com/x", &["*"]),
        false,
        now(),
    )
    .await
    .expect("create");
    let listed = api::list_webhook_endpoints(s, &t, now()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret.is_none(), "secrets are shown only on create and rotate");
    assert_eq!(
        api::get_webhook_endpoint(s, &t, &ep.id, now()).await.expect("get").url,
        "https://hooks.example.com/x"
    );
    api::delete_webhook_endpoint(s, &t, &ep.id, now()).await.expect("delete");
    assert!(matches!(
        api::delete_webhook_endpoint(s, &t, &ep.id, now()).await,
        Err(api::ApiError::NotFound { .. })
    ));
    assert!(matches!(
        api::get_webhook_endpoint(s, &t, &ep.id, now()).await,
        Err(api::ApiError::NotFound { .. })
    ));
    let q = DeliveryQuery { status: Some("bogus".to_owned()), ..Default::default() };
    assert!(matches!(api::list_deliveries(s, &t, &q).await, Err(api::ApiError::Invalid { .. })));
    assert!(matches!(
        api::retry_delivery(s, &t, "dlv_nope", now()).await,
        Err(api::ApiError::NotFound { .. })
    ));
}

/// Without the allowance, endpoints on loopback (by address or by a name that resolves
/// there) get nothing: every attempt is refused before a connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_guard_refuses_private_addresses() {
    let db = TestDatabase::sqlite().await.expect("fixture");
    let s = db.store();
    let t = tenant(s).await;
    let receiver = Receiver::start(Mode::Ok).await;
    let mut sinks = Vec::new();
    for url in
        [receiver.url("/by-ip"), format!("http://localhost:{}/by-name", receiver.addr.port())]
    {
        let new = NewWebhookEndpoint {
            tenant_id: t.clone(),
            url,
            event_types: vec!["*".to_owned()],
            description: "inside".to_owned(),
            secret: ivrpay_sync::signing::WebhookSecret::generate().to_text(),
        };
        sinks.push(s.add_webhook_endpoint(&new, now()).await.expect("endpoint"));
    }
    let options = SinkOptions {
        allow_private_webhooks: false,
        timeout: Duration::from_secs(2),
        refresh: Duration::from_secs(1),
    };
    let set = Arc::new(SinkSet::new(s.clone(), options).expect("sinks"));
    let mut config = fast();
    config.schedule = ivrpay_sync::RetrySchedule::from_secs(&[3600]);
    let metrics = Arc::new(SyncMetrics::default());
    let handle =
        Dispatcher::new(s.clone(), set, config, Arc::new(SystemClock), Arc::clone(&metrics))
            .spawn();
    usd(s, &t, "inside", 100).await;
    let failed =
        DeliveryFilter { status: Some("pending".to_owned()), limit: 10, ..Default::default() };
    assert!(
        wait_for(Duration::from_secs(10), || async {
            let rows = s.list_deliveries(&t, &failed).await.expect("list");
            rows.len() == 2 && rows.iter().all(|d| d.attempts == 1)
        })
        .await,
        "both deliveries failed once"
    );
    handle.stop(Duration::from_secs(5)).await;
    for d in s.list_deliveries(&t, &failed).await.expect("list") {
        let error = d.last_error.unwrap_or_default();
        assert!(error.starts_with("refused: ") && error.contains("SSRF"), "{error}");
    }
    assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    receiver.stop();
    db.cleanup().await.expect("cleanup");
}
