//! `GET /v1/calls` and `GET /v1/calls/{id}`.

use ivrpay_store::testing::TestDatabase;
use reqwest::Method;

use crate::support::Api;

crate::on_both!(list_and_get_calls);

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn list_and_get_calls(db: &TestDatabase) {
    let api = Api::start(db).await;
    let mut calls = Vec::new();
    for _ in 0..3 {
        calls.push(api.call("agent-7").await);
    }
    let ended = api.call("agent-7").await;
    api.service.call_ended(&ended, "customer_hangup");
    let path = format!("/v1/calls/{}", ended.as_str());
    crate::support::wait_for(std::time::Duration::from_secs(10), || async {
        api.get(&path, &api.admin).await.json["state"] == "ended"
    })
    .await;

    // Active calls, newest first, two per page.
    let first =
        api.get("/v1/calls?state=active&agent=agent-7&limit=2", &api.admin).await.expect(200);
    let newest: Vec<String> = calls.iter().rev().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(ids(&first.json), newest[..2]);
    let cursor = first.json["next"].as_str().expect("a next cursor");
    let second = api
        .get(&format!("/v1/calls?state=active&agent=agent-7&limit=2&cursor={cursor}"), &api.admin)
        .await
        .expect(200);
    assert_eq!(ids(&second.json), newest[2..]);
    assert!(second.json["next"].is_null(), "{}", second.text);
    // All calls include the ended one; another agent has none.
    let all = api.get("/v1/calls?state=all", &api.admin).await.expect(200);
    assert_eq!(ids(&all.json).len(), 4);
    assert!(ids(&all.json).contains(&ended.as_str().to_owned()));
    let none = api.get("/v1/calls?agent=agent-9", &api.admin).await.expect(200);
    assert!(ids(&none.json).is_empty());

    // One call, as the feed and the contact centre name it.
    let one = api.get(&format!("/v1/calls/{}", calls[0].as_str()), &api.agent7).await.expect(200);
    assert_eq!(one.json["state"], "active");
    assert_eq!(one.json["agent"], "agent-7");
    assert_eq!(one.json["caller"], "+441632960001");
    assert!(one.json["answered_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(one.json["payment_id"].is_null());
    let gone = api.get(&path, &api.admin).await.expect(200);
    assert_eq!(gone.json["end_reason"], "customer_hangup");
    assert!(gone.json["ended_at"].is_string());
    // Once a payment is open the call names it (the desktop finds it again after a reload).
    let session = api.open(&calls[0], &api.agent7).await;
    let one = api.get(&format!("/v1/calls/{}", calls[0].as_str()), &api.agent7).await.expect(200);
    assert_eq!(one.json["payment_id"], session.as_str());

    // 404 and 422.
    api.get("/v1/calls/call_01notacallatall", &api.admin).await.problem(404, None);
    api.get("/v1/calls/nonsense", &api.admin).await.problem(404, None);
    api.get("/v1/calls?state=sleeping", &api.admin).await.problem(422, Some("state"));
    api.get("/v1/calls?limit=0", &api.admin).await.problem(422, Some("limit"));
    api.get("/v1/calls?limit=many", &api.admin).await.problem(422, None);
    api.get("/v1/calls?cursor=pay_123", &api.admin).await.problem(422, Some("cursor"));
    api.get("/v1/calls?colour=red", &api.admin).await.problem(422, None);
    api.get("/v1/nothing-here", &api.admin).await.problem(404, None);
    // A method a path does not take: 405 as a problem, with what it does take.
    let wrong = api
        .send(Method::DELETE, &format!("/v1/calls/{}", calls[0].as_str()), &api.admin, None, None)
        .await
        .problem(405, None);
    assert_eq!(wrong.json["type"], "urn:ivrpay:problem:method-not-allowed");
    assert_eq!(wrong.header("allow"), Some("GET,HEAD"), "{:?}", wrong.text);
}
