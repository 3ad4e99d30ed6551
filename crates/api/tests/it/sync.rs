//! The downstream sync's endpoints, mounted for admin keys.

use ivrpay_store::testing::TestDatabase;
use reqwest::Method;
use serde_json::json;

use crate::support::Api;

crate::on_both!(sync_endpoints);

async fn sync_endpoints(db: &TestDatabase) {
    let api = Api::start(db).await;

    // Webhook endpoints: create (201, secret shown once), list, get, rotate, delete.
    let body = json!({ "url": "http://127.0.0.1:9/hooks", "events": ["payment.succeeded", "refund.succeeded"], "description": "books" });
    let created = api.post("/v1/webhook-endpoints", &api.admin, &body).await.expect(201);
    let id = created.json["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("snk_"));
    let secret = created.json["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created.header("location"), Some(format!("/v1/webhook-endpoints/{id}").as_str()));
    let list = api.get("/v1/webhook-endpoints", &api.admin).await.expect(200);
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));
    assert!(list.json["data"][0].get("secret").is_none(), "secrets are shown once: {}", list.text);
    let one = api.get(&format!("/v1/webhook-endpoints/{id}"), &api.admin).await.expect(200);
    assert_eq!(one.json["events"], json!(["payment.succeeded", "refund.succeeded"]));
    let rotated = api
        .post(&format!("/v1/webhook-endpoints/{id}/rotate-secret"), &api.admin, &json!({}))
        .await
        .expect(200);
    assert!(rotated.json["secret"].as_str().is_some_and(|s| s != secret));
    api.post(
        "/v1/webhook-endpoints",
        &api.admin,
        &json!({ "url": "ftp://example.com/", "events": ["*"] }),
    )
    .await
    .problem(422, Some("url"));
    api.post(
        "/v1/webhook-endpoints",
        &api.admin,
        &json!({ "url": "https://example.com/", "events": ["payment.teleported"] }),
    )
    .await
    .problem(422, Some("events"));
    let gone = api
        .send(Method::DELETE, &format!("/v1/webhook-endpoints/{id}"), &api.admin, None, None)
        .await;
    assert_eq!(gone.status.as_u16(), 204, "{}", gone.text);
    api.get(&format!("/v1/webhook-endpoints/{id}"), &api.admin).await.problem(404, None);
    api.send(Method::DELETE, &format!("/v1/webhook-endpoints/{id}"), &api.admin, None, None)
        .await
        .problem(404, None);
    api.get("/v1/webhook-endpoints/snk_01nosuchsink", &api.admin).await.problem(404, None);

    // Deliveries.
    let failed = api.get("/v1/deliveries?status=failed", &api.admin).await.expect(200);
    assert!(failed.json["data"].is_array(), "{}", failed.text);
    api.get("/v1/deliveries?status=lost", &api.admin).await.problem(422, Some("status"));
    api.get("/v1/deliveries/dlv_01nosuchdelivery", &api.admin).await.problem(404, None);
    api.post("/v1/deliveries/dlv_01nosuchdelivery/retry", &api.admin, &json!({}))
        .await
        .problem(404, None);
    api.post(
        "/v1/deliveries/replay",
        &api.admin,
        &json!({ "sink": "nope", "since": "2026-01-01" }),
    )
    .await
    .problem(422, Some("sink"));
    api.post(
        "/v1/deliveries/replay",
        &api.admin,
        &json!({ "sink": "snk_01nosuchsink", "since": "yesterday" }),
    )
    .await
    .problem(422, Some("since"));

    // The settlement report, JSON and CSV.
    let report = api.get("/v1/reports/settlement?date=2026-01-02", &api.admin).await.expect(200);
    assert_eq!(report.header("content-type"), Some("application/json"));
    assert_eq!(report.json["date"], "2026-01-02", "{}", report.text);
    let csv =
        api.get("/v1/reports/settlement?date=2026-01-02&format=csv", &api.admin).await.expect(200);
    assert!(csv.header("content-type").is_some_and(|c| c.starts_with("text/csv")));
    api.get("/v1/reports/settlement?date=02/01/2026", &api.admin).await.problem(422, Some("date"));
    api.get("/v1/reports/settlement", &api.admin).await.problem(422, None);
}
