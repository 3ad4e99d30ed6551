//! Payment sessions from open to result, refunds, and the error answers on the way.

use reqwest::Method;
use serde_json::json;

use ivrpay_store::testing::TestDatabase;

use crate::support::{Api, PAN, assert_no_card_data, fresh_key};

crate::on_both!(a_payment_from_open_to_refund, declines_cancels_and_conflicts);

async fn a_payment_from_open_to_refund(db: &TestDatabase) {
    let api = Api::start(db).await;
    let call = api.call("agent-7").await;
    let open = format!("/v1/calls/{}/payments", call.as_str());
    let body = json!({ "amount": "12.50", "currency": "GBP", "description": "Invoice 1", "customer_ref": "INV-1" });

    // POST needs an Idempotency-Key.
    api.send(Method::POST, &open, &api.agent7, None, Some(&body))
        .await
        .problem(400, Some("idempotency-key-missing"));
    api.send(Method::POST, &open, &api.agent7, Some("bad key with spaces"), Some(&body))
        .await
        .problem(400, Some("idempotency-key-invalid"));

    // 201 with the session, capturing the card number at once.
    let key = fresh_key();
    let created =
        api.send(Method::POST, &open, &api.agent7, Some(&key), Some(&body)).await.expect(201);
    let id = created.json["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("sess_"));
    assert_eq!(created.header("location"), Some(format!("/v1/payments/{id}").as_str()));
    assert_eq!(created.json["status"], "open");
    assert_eq!(created.json["amount"], "12.50");
    assert_eq!(created.json["currency"], "GBP");
    assert_eq!(created.json["call_id"], call.as_str());
    assert_eq!(
        created.json["required"],
        json!(["payment-card-number", "expiration-date", "security-code"])
    );
    assert_eq!(created.json["capturing"], "payment-card-number");
    assert!(created.header("idempotent-replayed").is_none());

    // The same request again: the same answer, replayed. The same key with another body: 422.
    let replay =
        api.send(Method::POST, &open, &api.agent7, Some(&key), Some(&body)).await.expect(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json, created.json);
    let other = json!({ "amount": "99.00", "currency": "GBP" });
    api.send(Method::POST, &open, &api.agent7, Some(&key), Some(&other)).await.problem(422, None);
    // A new key for another payment while this one is open: 409.
    api.post(&open, &api.agent7, &other).await.problem(409, Some("session-in-progress"));

    // The customer keys half the card: masked progress, no digit beyond what is allowed.
    api.keys(&call, &PAN[..8]);
    let partial = api
        .wait_payment(&id, "partial", |p| {
            p["fields"][0]["masked"]
                .as_str()
                .is_some_and(|m| m.chars().filter(|c| *c == '•').count() == 8)
        })
        .await;
    assert_eq!(partial["brand"], "visa");
    assert_no_card_data("partial view", &partial.to_string());
    // Asking for the security code before the card number is done: 409 (Twilio's sequence).
    let update = format!("/v1/payments/{id}");
    api.post(&update, &api.agent7, &json!({ "capture": "security-code" }))
        .await
        .problem(409, Some("invalid-card-number-security-code-capture-sequence"));
    // A field this session does not collect: 422; an unknown one: 422; completing early: 409.
    api.post(&update, &api.agent7, &json!({ "capture": "postal-code" }))
        .await
        .problem(422, Some("postal-code"));
    api.post(&update, &api.agent7, &json!({ "capture": "favourite-colour" }))
        .await
        .problem(422, Some("capture"));
    api.post(&update, &api.agent7, &json!({ "capture": "expiry", "status": "complete" }))
        .await
        .problem(422, Some("body"));
    api.post(&update, &api.agent7, &json!({ "status": "finish" }))
        .await
        .problem(422, Some("status"));
    api.post(&update, &api.agent7, &json!({ "status": "complete" }))
        .await
        .problem(409, Some("fields-missing"));

    // The rest of the card, the expiry and the code.
    api.keys(&call, &PAN[8..]);
    api.keys(&call, crate::support::EXPIRY);
    // Re-ask the expiry (short name accepted), key it again, then the code.
    let reask = api.post(&update, &api.agent7, &json!({ "capture": "expiry" })).await.expect(200);
    assert_eq!(reask.json["capturing"], "expiration-date");
    api.keys(&call, crate::support::EXPIRY);
    api.keys(&call, crate::support::CVC);
    let ready = api
        .wait_payment(&id, "ready", |p| {
            p["required"].as_array().is_some_and(Vec::is_empty) && p["capturing"].is_null()
        })
        .await;
    let fields: Vec<(&str, &str, bool)> = ready["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or(""),
                f["masked"].as_str().unwrap_or(""),
                f["complete"] == true,
            )
        })
        .collect();
    assert!(fields.contains(&("payment-card-number", "•••• •••• •••• 4242", true)), "{fields:?}");
    assert!(
        fields.contains(&("expiration-date", "12/30", true))
            || fields.contains(&("expiration-date", "1230", true)),
        "{fields:?}"
    );
    assert!(fields.contains(&("security-code", "•••", true)), "{fields:?}");
    assert_no_card_data("ready view", &ready.to_string());

    // Complete: the gateway charges; a replay of the same command is the same answer.
    let key = fresh_key();
    let complete = json!({ "status": "complete" });
    let done =
        api.send(Method::POST, &update, &api.agent7, Some(&key), Some(&complete)).await.expect(200);
    assert_eq!(done.json["status"], "succeeded", "{}", done.text);
    assert_eq!(
        (done.json["brand"].as_str(), done.json["last4"].as_str()),
        (Some("visa"), Some("4242"))
    );
    assert!(done.json["charge_id"].as_str().is_some_and(|c| c.starts_with("pay_")));
    assert!(done.json["gateway_ref"].is_string());
    assert_no_card_data("result", &done.text);
    let again =
        api.send(Method::POST, &update, &api.agent7, Some(&key), Some(&complete)).await.expect(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["charge_id"], done.json["charge_id"]);
    // A new complete or cancel of a finished payment: 409.
    api.post(&update, &api.agent7, &complete).await.problem(409, Some("payment-not-open"));
    api.post(&update, &api.agent7, &json!({ "status": "cancel" }))
        .await
        .problem(409, Some("payment-not-open"));
    let view = api.get(&update, &api.agent7).await.expect(200);
    assert_eq!(view.json["status"], "succeeded");

    // Refunds: admin only, replayable, never more than was paid.
    let refunds = format!("/v1/payments/{id}/refunds");
    api.post(&refunds, &api.agent7, &json!({ "amount": "5.00" })).await.problem(403, None);
    api.post(&refunds, &api.admin, &json!({ "amount": "five" })).await.problem(422, Some("amount"));
    api.post(&refunds, &api.admin, &json!({ "amount": "0" })).await.problem(422, Some("amount"));
    let key = fresh_key();
    let partial = json!({ "amount": "5.00", "reason": "goodwill" });
    let refund =
        api.send(Method::POST, &refunds, &api.admin, Some(&key), Some(&partial)).await.expect(201);
    assert_eq!(refund.json["status"], "succeeded", "{}", refund.text);
    assert_eq!(refund.json["amount"], "5.00");
    assert_eq!(refund.json["payment_id"], id.as_str());
    let replayed =
        api.send(Method::POST, &refunds, &api.admin, Some(&key), Some(&partial)).await.expect(201);
    assert_eq!(replayed.json["id"], refund.json["id"]);
    api.post(&refunds, &api.admin, &json!({ "amount": "8.00" }))
        .await
        .problem(422, Some("refund-exceeds-payment"));
    let rest = api.post(&refunds, &api.admin, &json!({})).await.expect(201);
    assert_eq!(rest.json["amount"], "7.50");
    let list = api.get(&refunds, &api.admin).await.expect(200);
    let amounts: Vec<&str> = list.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["amount"].as_str())
        .collect();
    assert_eq!(amounts, ["5.00", "7.50"]);
    api.post("/v1/payments/sess_01nosuchsession/refunds", &api.admin, &json!({}))
        .await
        .problem(404, None);
}

async fn declines_cancels_and_conflicts(db: &TestDatabase) {
    let api = Api::start(db).await;
    let call = api.call("agent-7").await;
    let open = format!("/v1/calls/{}/payments", call.as_str());

    // 422s on the way in.
    for (body, code) in [
        (json!({ "amount": "12.5x", "currency": "GBP" }), "amount"),
        (json!({ "amount": "12.50", "currency": "XXX" }), "currency"),
        (json!({ "amount": "12.50", "currency": "GBP", "token_type": "forever" }), "token_type"),
        (
            json!({ "amount": "12.50", "currency": "GBP", "customer_ref": "x".repeat(200) }),
            "customer_ref",
        ),
    ] {
        api.post(&open, &api.agent7, &body).await.problem(422, Some(code));
    }
    api.post(&open, &api.agent7, &json!({ "amount": 12.5, "currency": "GBP" }))
        .await
        .problem(422, None);
    api.post(&open, &api.agent7, &json!({ "amount": "1.00", "currency": "GBP", "tip": true }))
        .await
        .problem(422, None);
    let raw = api
        .http
        .post(api.url(&open))
        .bearer_auth(&api.agent7)
        .header("Idempotency-Key", fresh_key())
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(raw.status().as_u16(), 400);
    let raw = api
        .http
        .post(api.url(&open))
        .bearer_auth(&api.agent7)
        .header("Idempotency-Key", fresh_key())
        .body("amount=1")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(raw.status().as_u16(), 415);
    api.post(
        "/v1/calls/call_01nosuchcall/payments",
        &api.agent7,
        &json!({ "amount": "1.00", "currency": "GBP" }),
    )
    .await
    .problem(404, None);

    // A declined card: the view says so, with the decline code and no charge.
    let id = api.open(&call, &api.agent7).await;
    api.key_card(&call, &id, "4000000000000002").await;
    let declined = api
        .post(&format!("/v1/payments/{id}"), &api.agent7, &json!({ "status": "complete" }))
        .await
        .expect(200);
    assert_eq!(declined.json["status"], "declined", "{}", declined.text);
    assert_eq!(declined.json["decline_code"], "generic_decline");
    assert_eq!(declined.json["last4"], "0002");
    api.post(&format!("/v1/payments/{id}/refunds"), &api.admin, &json!({}))
        .await
        .problem(409, Some("invalid-state"));

    // A new session on the same call after the decline; then cancelled.
    let second = api.open(&call, &api.agent7).await;
    assert_ne!(second, id);
    let cancelled = api
        .post(&format!("/v1/payments/{second}"), &api.agent7, &json!({ "status": "cancel" }))
        .await
        .expect(200);
    assert_eq!(cancelled.json["status"], "cancelled");
    api.post(&format!("/v1/payments/{second}"), &api.agent7, &json!({ "capture": "card-number" }))
        .await
        .problem(409, None);

    // A session on a call that ended: the call's end cancels it; nothing opens there any more.
    let third = api.open(&call, &api.agent7).await;
    api.service.call_ended(&call, "customer_hangup");
    let ended =
        api.wait_payment(&third, "cancelled by the hang-up", |p| p["status"] == "cancelled").await;
    assert_eq!(ended["id"], third.as_str());
    api.post(&open, &api.agent7, &json!({ "amount": "1.00", "currency": "GBP" }))
        .await
        .problem(409, Some("call-ended"));

    // Unknown payments.
    api.get("/v1/payments/sess_01nosuchsession", &api.agent7).await.problem(404, None);
    api.get("/v1/payments/pay_123", &api.admin).await.problem(404, None);
    api.post("/v1/payments/sess_01nosuchsession", &api.admin, &json!({ "status": "cancel" }))
        .await
        .problem(404, None);
}
