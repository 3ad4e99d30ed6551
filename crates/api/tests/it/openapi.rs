//! The OpenAPI document: valid for an independent validator, and exactly the routes that
//! answer; real answers have the documented shape.

use std::collections::BTreeSet;

use ivrpay_store::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Api;

crate::on_both!(document_matches_the_routes);

/// Checks `value` against `schema` (following `$ref`s into `doc`): no property the schema
/// does not declare, every required one present, recursively through objects and arrays.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{at}: dangling $ref {reference}");
        return conforms(doc, target, value, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            if value.is_null() {
                return;
            }
            let fitting: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            assert!(!fitting.is_empty(), "{at}: no non-null alternative");
            // Ours are `T or null`: check against the one alternative.
            return conforms(doc, fitting[0], value, at);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let object =
            value.as_object().unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
        for (k, v) in object {
            let property =
                properties.get(k).unwrap_or_else(|| panic!("{at}: `{k}` is not documented"));
            conforms(doc, property, v, &format!("{at}.{k}"));
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or("");
            assert!(object.contains_key(name), "{at}: required `{name}` missing in {value}");
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            conforms(doc, items, v, &format!("{at}[{i}]"));
        }
    }
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
    let content = &doc["paths"][path][method]["responses"][status]["content"];
    let media = content
        .as_object()
        .and_then(|m| m.values().next())
        .unwrap_or_else(|| panic!("no {status} content for {method} {path}"));
    &media["schema"]
}

async fn document_matches_the_routes(db: &TestDatabase) {
    let api = Api::start(db).await;
    let answer = api.get("/v1/openapi.json", "").await.expect(200);
    let doc = answer.json.clone();
    assert_eq!(doc["openapi"], "3.1.0");

    // An independent validator accepts it.
    let python = std::env::var("IVRPAY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let file = std::env::temp_dir().join(format!("ivrpay-openapi-{}.json", std::process::id()));
    std::fs::write(&file, &answer.text).expect("write the document");
    let check = tokio::process::Command::new(&python)
        .args(["-c", "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')"])
        .arg(&file)
        .output()
        .await
        .expect("run python");
    let _ = std::fs::remove_file(&file);
    assert!(
        check.status.success(),
        "openapi-spec-validator rejects the document (install it with `{python} -m pip install openapi-spec-validator`; scripts/test.sh does):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // It lists what the issue names, and more.
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_some() {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    for wanted in [
        "GET /v1/calls",
        "GET /v1/calls/{call_id}",
        "POST /v1/calls/{call_id}/payments",
        "POST /v1/payments/{payment_id}",
        "GET /v1/payments/{payment_id}",
        "POST /v1/payments/{payment_id}/refunds",
        "GET /v1/openapi.json",
        "GET /v1/feed",
        "GET /v1/calls/{call_id}/events",
        "POST /v1/webhook-endpoints",
        "GET /v1/webhook-endpoints",
        "GET /v1/webhook-endpoints/{endpoint_id}",
        "DELETE /v1/webhook-endpoints/{endpoint_id}",
        "POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        "GET /v1/deliveries",
        "POST /v1/deliveries/{delivery_id}/retry",
        "POST /v1/deliveries/replay",
        "GET /v1/reports/settlement",
        "GET /healthz",
        "GET /metrics",
        "GET /desktop",
    ] {
        assert!(operations.contains(wanted), "{wanted} is not in the document: {operations:#?}");
    }

    // Every documented operation answers (never 404 or 405): 401 without a key where the
    // document asks for one, 2xx where it does not; every POST documents Idempotency-Key.
    for operation in &operations {
        let (method, path) = operation.split_once(' ').expect("method and path");
        let spec = &doc["paths"][path][method.to_lowercase()];
        let concrete = path
            .replace("{call_id}", "call_01nosuchcall")
            .replace("{payment_id}", "sess_01nosuchsession")
            .replace("{endpoint_id}", "snk_01nosuchsink")
            .replace("{delivery_id}", "dlv_01nosuchdelivery");
        let secured = spec["security"].as_array().is_some_and(|s| !s.is_empty());
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (method == Method::POST).then(|| json!({}));
        let a = api.send(method.clone(), &concrete, "", Some("doc-check"), body.as_ref()).await;
        if secured {
            assert_eq!(a.status.as_u16(), 401, "{operation} without a key: {}", a.text);
            assert!(spec["responses"]["401"].is_object(), "{operation} does not document its 401");
        } else {
            assert!(a.status.is_success(), "{operation}: {} {}", a.status, a.text);
        }
        if method == Method::POST {
            let params = spec["parameters"].as_array().cloned().unwrap_or_default();
            assert!(
                params.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
                "{operation} does not document Idempotency-Key"
            );
        }
    }
    // And what is not documented does not answer.
    for (method, path) in [
        (Method::GET, "/v1/keys"),
        (Method::DELETE, "/v1/calls/call_01x"),
        (Method::PUT, "/v1/payments/sess_01x"),
    ] {
        let a = api.send(method.clone(), path, &api.admin, Some("x"), None).await;
        assert!(matches!(a.status.as_u16(), 404 | 405), "{method} {path}: {}", a.status);
    }

    // Real answers have the documented shape.
    let call = api.call("agent-7").await;
    let session = api.open(&call, &api.agent7).await;
    api.keys(&call, "42424242");
    let checks = [
        ("/v1/calls", "/v1/calls".to_owned()),
        ("/v1/calls/{call_id}", format!("/v1/calls/{}", call.as_str())),
        ("/v1/payments/{payment_id}", format!("/v1/payments/{session}")),
        ("/v1/me", "/v1/me".to_owned()),
        ("/v1/webhook-endpoints", "/v1/webhook-endpoints".to_owned()),
        ("/v1/deliveries", "/v1/deliveries".to_owned()),
    ];
    for (template, path) in checks {
        let a = api.get(&path, &api.admin).await.expect(200);
        conforms(&doc, response_schema(&doc, template, "get", "200"), &a.json, &path);
    }
    let created = api
        .post(
            "/v1/webhook-endpoints",
            &api.admin,
            &json!({ "url": "https://example.com/h", "events": ["*"] }),
        )
        .await
        .expect(201);
    conforms(
        &doc,
        response_schema(&doc, "/v1/webhook-endpoints", "post", "201"),
        &created.json,
        "endpoint",
    );
    let problem = api.get("/v1/calls/call_01nosuchcall", &api.admin).await.expect(404);
    conforms(
        &doc,
        response_schema(&doc, "/v1/calls/{call_id}", "get", "404"),
        &problem.json,
        "problem",
    );
}
