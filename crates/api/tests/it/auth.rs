//! Keys: 401 without a valid one, 403 for the wrong scope, agents confined to their calls.

use ivrpay_api::Bootstrap;
use ivrpay_api::auth::bootstrap_admin_key;
use ivrpay_service::{Clock as _, SystemClock};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{ApiKeyHash, TenantId};
use reqwest::Method;
use serde_json::json;

use crate::support::{Api, fresh_key};

crate::on_both!(keys_and_scopes, bootstrap_key_once);

async fn keys_and_scopes(db: &TestDatabase) {
    let api = Api::start(db).await;
    let call7 = api.call("agent-7").await;
    let call9 = api.call("agent-9").await;

    // 401: no key, a made-up key, a malformed header, a revoked key.
    api.get("/v1/calls", "").await.problem(401, None);
    let a = api.get("/v1/calls", "ivrpay_notakey").await.problem(401, None);
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    let r = api.http.get(api.url("/v1/calls")).header("Authorization", "Basic abc").send().await;
    assert_eq!(r.expect("HTTP").status().as_u16(), 401);
    let (id, revoked) = ivrpay_api::auth::create_key(
        &api.store,
        &api.tenant,
        &ivrpay_api::Scope::Admin,
        "to revoke",
        "test",
        SystemClock.now(),
    )
    .await
    .expect("key");
    api.get("/v1/calls", &revoked).await.expect(200);
    assert!(api.store.revoke_api_key(&id, SystemClock.now()).await.expect("revoke"));
    api.get("/v1/calls", &revoked).await.problem(401, None);
    // A POST without a key is a 401 before anything else (even without Idempotency-Key).
    let path = format!("/v1/calls/{}/payments", call7.as_str());
    api.send(Method::POST, &path, "", None, Some(&json!({}))).await.problem(401, None);
    api.send(Method::POST, &path, "ivrpay_wrong", None, Some(&json!({}))).await.problem(401, None);

    // /v1/me says who.
    let me = api.get("/v1/me", &api.agent7).await.expect(200);
    assert_eq!(
        (me.json["scope"].as_str(), me.json["agent"].as_str()),
        (Some("agent"), Some("agent-7"))
    );
    let me = api.get("/v1/me", &api.admin).await.expect(200);
    assert_eq!(me.json["scope"], "admin");
    assert!(me.json["agent"].is_null());

    // An agent sees its own calls only; another agent's call is a 404, asking for another
    // agent's list a 403.
    let list = api.get("/v1/calls", &api.agent7).await.expect(200);
    let ids: Vec<&str> = list.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, [call7.as_str()]);
    api.get("/v1/calls?agent=agent-9", &api.agent7).await.problem(403, None);
    api.get("/v1/calls?agent=agent-7", &api.agent7).await.expect(200);
    api.get(&format!("/v1/calls/{}", call9.as_str()), &api.agent7).await.problem(404, None);
    api.get(&format!("/v1/calls/{}", call7.as_str()), &api.agent7).await.expect(200);
    let all = api.get("/v1/calls", &api.admin).await.expect(200);
    assert_eq!(all.json["data"].as_array().map(Vec::len), Some(2));

    // agent-9's payment is invisible to agent-7 (404), and agent-7 cannot open one there.
    let pay9 = api.open(&call9, &api.agent9).await;
    api.get(&format!("/v1/payments/{pay9}"), &api.agent7).await.problem(404, None);
    api.post(&format!("/v1/payments/{pay9}"), &api.agent7, &json!({"status": "cancel"}))
        .await
        .problem(404, None);
    api.post(
        &format!("/v1/calls/{}/payments", call9.as_str()),
        &api.agent7,
        &json!({"amount": "1.00", "currency": "GBP"}),
    )
    .await
    .problem(404, None);

    // 403: admin-only endpoints with an agent key.
    for path in [
        "/v1/webhook-endpoints",
        "/v1/deliveries",
        "/v1/reports/settlement?date=2026-01-02",
        &format!("/v1/payments/{pay9}/refunds"),
    ] {
        api.get(path, &api.agent9).await.problem(403, None);
    }
    api.post(&format!("/v1/payments/{pay9}/refunds"), &api.agent9, &json!({}))
        .await
        .problem(403, None);
    api.post(
        "/v1/webhook-endpoints",
        &api.agent9,
        &json!({"url": "https://example.com/h", "events": ["*"]}),
    )
    .await
    .problem(403, None);
    // A feed of another agent: 403; of another agent's call: 404 (before any upgrade).
    api.get("/v1/feed?agent=agent-9", &api.agent7).await.problem(403, None);
    api.get(&format!("/v1/feed?call={}", call9.as_str()), &api.agent7).await.problem(404, None);
    api.get(&format!("/v1/calls/{}/events", call9.as_str()), &api.agent7).await.problem(404, None);
    // A feed request that is not a WebSocket handshake.
    api.get("/v1/feed", &api.agent7).await.problem(426, Some("upgrade-required"));

    // The auth failures are counted.
    let metrics = api.get("/metrics", "").await.expect(200);
    let failures: u64 = metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix("ivrpay_api_auth_failures_total "))
        .and_then(|v| v.parse().ok())
        .expect("auth failures counter");
    assert!(failures >= 6, "{}", metrics.text);
    assert!(metrics.text.starts_with("# the process's metrics"));
}

async fn bootstrap_key_once(db: &TestDatabase) {
    let store = db.store();
    let tenant = TenantId::parse("ten_boot").expect("tenant");
    let now = SystemClock.now();
    store.ensure_tenant(&tenant, "boot", now).await.expect("tenant");
    // A preset that is too short is refused before anything is stored.
    assert!(bootstrap_admin_key(store, &tenant, Some("short"), now).await.is_err());
    assert_eq!(store.api_key_count(&tenant).await.expect("count"), 0);
    // First start: the preset becomes the admin key, stored as a hash only.
    let preset = fresh_key();
    let first = bootstrap_admin_key(store, &tenant, Some(&preset), now).await.expect("bootstrap");
    assert!(matches!(first, Bootstrap::FromEnv { .. }), "{first:?}");
    let record = store
        .api_key_by_hash(&ApiKeyHash::of_secret(&preset))
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(record.scopes, ["admin"]);
    // Later starts do nothing, whatever the environment says.
    let again = bootstrap_admin_key(store, &tenant, Some(&fresh_key()), now).await.expect("again");
    assert_eq!(again, Bootstrap::Existing);
    let none = bootstrap_admin_key(store, &tenant, None, now).await.expect("again");
    assert_eq!(none, Bootstrap::Existing);
    // Without a preset on a fresh tenant: a random key to show once.
    let other = TenantId::parse("ten_boot2").expect("tenant");
    store.ensure_tenant(&other, "boot2", now).await.expect("tenant");
    match bootstrap_admin_key(store, &other, None, now).await.expect("bootstrap") {
        Bootstrap::Generated { secret, .. } => {
            assert!(secret.starts_with("ivrpay_") && secret.len() == 47, "{secret}");
            let found =
                store.api_key_by_hash(&ApiKeyHash::of_secret(&secret)).await.expect("lookup");
            assert_eq!(found.map(|r| r.tenant_id), Some(other));
        }
        other => panic!("expected a generated key, got {other:?}"),
    }
}
