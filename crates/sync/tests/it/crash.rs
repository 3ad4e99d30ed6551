//! Crash: SIGKILL a process running the real dispatcher (`ivrpay-sync-worker`) while
//! deliveries are in flight, restart it, and every event is delivered: none is lost; the
//! ones in flight at the kill are sent again under the same `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ivrpay_store::DeliveryFilter;
use ivrpay_store::testing::TestDatabase;
use ivrpay_sync::api::{self, CreateEndpoint};

use crate::support::{Mode, Receiver, now, tenant, usd, wait_for};

crate::on_both!(sigkill_mid_flight_loses_nothing);

const EVENTS: usize = 150;

fn worker(db: &TestDatabase, config: &std::path::Path) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivrpay-sync-worker"));
    match (db.dir(), db.postgres_schema()) {
        (Some(dir), _) => cmd.arg("--data-dir").arg(dir),
        (None, Some((url, schema))) => cmd.args(["--database-url", url, "--schema", schema]),
        _ => panic!("fixture without a database"),
    };
    cmd.arg("--config").arg(config).kill_on_drop(true).spawn().expect("start ivrpay-sync-worker")
}

async fn sigkill_mid_flight_loses_nothing(db: &TestDatabase) {
    let s = db.store();
    let t = tenant(s).await;
    // Slow answers keep deliveries in flight.
    let receiver = Receiver::start(Mode::Delay(Duration::from_millis(40))).await;
    let request = CreateEndpoint {
        url: receiver.url("/hooks"),
        events: vec!["*".to_owned()],
        description: None,
    };
    api::create_webhook_endpoint(s, &t, request, true, now()).await.expect("endpoint");
    for i in 0..EVENTS {
        usd(s, &t, &format!("c{i}"), 100 + i as u64).await;
    }
    let dir = std::env::temp_dir().join(format!(
        "ivrpay-crash-{}-{}",
        std::process::id(),
        receiver.addr.port()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("ivrpay.toml");
    std::fs::write(
        &config,
        "[sync]\ntenant = \"ten_acme\"\nconcurrency = 16\nbatch = 16\nlease_secs = 2\npoll_interval_ms = 20\n\
         timeout_secs = 5\nretry_schedule_secs = [1, 1, 1, 1, 1, 1, 1]\nallow_private_webhooks = true\n",
    )
    .expect("config");

    let mut first = worker(db, &config);
    assert!(
        wait_for(Duration::from_secs(30), || async { receiver.received().len() >= 30 }).await,
        "deliveries under way"
    );
    first.kill().await.expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    let status = first.wait().await.expect("wait");
    assert!(!status.success(), "killed, not exited: {status}");
    let sending =
        DeliveryFilter { status: Some("sending".to_owned()), limit: 1000, ..Default::default() };
    let in_flight = s.list_deliveries(&t, &sending).await.expect("list").len();
    let before = receiver.received().len();
    assert!(in_flight > 0, "deliveries were in flight at the kill");
    assert!(before < EVENTS, "the kill came before the end ({before} of {EVENTS})");

    let mut second = worker(db, &config);
    let ids: HashSet<String> =
        s.events_since(&t, 0, 1000).await.expect("feed").iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids.len(), EVENTS);
    let all_in = wait_for(Duration::from_secs(60), || async {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_owned))
            .collect();
        got == ids
    })
    .await;
    // Deliveries leased by the killed worker come back when their lease runs out (2 s):
    // the restarted worker sends them again and records them.
    let all_recorded = wait_for(Duration::from_secs(30), || async {
        let delivered = DeliveryFilter {
            status: Some("delivered".to_owned()),
            limit: 1000,
            ..Default::default()
        };
        s.list_deliveries(&t, &delivered).await.expect("list").len() == EVENTS
    })
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &second.id().unwrap_or(0).to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), second.wait()).await;
    assert!(all_in, "every event delivered after the restart");
    assert!(all_recorded, "every delivery recorded as delivered");
    let received = receiver.received();
    let mut per_id: HashMap<String, Vec<&Vec<u8>>> = HashMap::new();
    for r in &received {
        per_id.entry(r.header("webhook-id").expect("id").to_owned()).or_default().push(&r.body);
    }
    let duplicates = received.len() - per_id.len();
    for bodies in per_id.values() {
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "a redelivery is the same event");
    }
    println!(
        "crash ({:?}): killed with {in_flight} in flight after {before} requests; {} events delivered, {duplicates} duplicates (same webhook-id)",
        db.kind(),
        per_id.len()
    );
    receiver.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
