//! The agent desktop in a real browser: headless Chromium (Debian `chromium`) driven over
//! the DevTools protocol by `chromiumoxide`, on a real call through `ivrpay serve` between
//! SIPp's customer and agent. The customer keys the card as in-band DTMF tones; the page
//! shows the masked progress and the result; the page's DOM and every feed message the
//! browser received hold no card digit beyond the last four and no security code.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::{EnableParams, EventWebSocketFrameReceived};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt as _;
use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Keying, key_string};

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, require_tool, scratch};

const PAN: &str = "4242424242424242";
const EXPIRY: &str = "1230";
const CVC: &str = "737";
const ADMIN_KEY: &str = "ivrpay_desktop_test_admin_key_0001";

/// Writes `digits` as in-band tones, the way the customer's phone sends them (µ-law).
fn tone_file(dir: &Path, name: &str, digits: &str) {
    let keying = Keying { on_ms: 80.0, off_ms: 80.0, ..Keying::default() };
    let mut tones = key_string(digits, &keying).expect("keys");
    tones.resize(tones.len() + 8000 / 5, 0);
    tones.resize(tones.len().div_ceil(160) * 160, 0);
    let mut ulaw = vec![0u8; tones.len()];
    Law::Ulaw.encode_slice(&tones, &mut ulaw);
    std::fs::write(dir.join(name), ulaw).expect("tone file");
}

/// Every PAN fragment longer than the last four, and the CVC standing alone.
fn assert_no_card_data(what: &str, text: &str) {
    for start in 0..PAN.len() - 4 {
        let fragment = &PAN[start..start + 5];
        assert!(!text.contains(fragment), "{what} holds PAN digits {fragment}");
    }
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(CVC) {
        let alnum =
            |j: Option<usize>| j.and_then(|j| bytes.get(j)).is_some_and(u8::is_ascii_alphanumeric);
        assert!(alnum(i.checked_sub(1)) || alnum(Some(i + CVC.len())), "{what} holds the CVC");
    }
}

/// The customer's cue: a SIP MESSAGE in the customer's dialog, to SIPp's port.
struct Customer {
    socket: UdpSocket,
    sipp: std::net::SocketAddr,
    call_id: String,
    cues: u32,
}

impl Customer {
    fn cue(&mut self) {
        self.cues += 1;
        let port = self.socket.local_addr().expect("bound").port();
        let message = format!(
            "MESSAGE sip:customer@{sipp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-cue{n}\r\n\
             From: <sip:desk@127.0.0.1>;tag=cue\r\nTo: <sip:customer@127.0.0.1>\r\nCall-ID: {call}\r\n\
             CSeq: {n} MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            sipp = self.sipp,
            n = self.cues,
            call = self.call_id,
        );
        self.socket.send_to(message.as_bytes(), self.sipp).expect("cue");
    }
}

/// Debian's Chromium (or `IVRPAY_CHROMIUM`), as a full path.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("IVRPAY_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
        })
        .expect("chromium is installed (require_tool checked)")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir
}

/// Evaluates `expression` until it is true (the page updates from its feed).
async fn wait_until(page: &Page, expression: &str, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let value = page.evaluate(expression).await.ok().and_then(|r| r.into_value::<bool>().ok());
        if value == Some(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = page
                .evaluate("document.body.innerText")
                .await
                .ok()
                .and_then(|r| r.into_value::<String>().ok())
                .unwrap_or_default();
            let _ = std::fs::write(artifacts().join("desktop-failure.txt"), &text);
            if let Ok(png) = page
                .screenshot(
                    ScreenshotParams::builder()
                        .format(CaptureScreenshotFormat::Png)
                        .full_page(true)
                        .build(),
                )
                .await
            {
                let _ = std::fs::write(artifacts().join("desktop-failure.png"), png);
            }
            panic!("the page never showed {what} within {limit:?}; it reads:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the field row `field` (`payment-card-number`, …).
fn row(field: &str) -> String {
    format!(
        "(document.querySelector('#fields tr[data-field=\"{field}\"]') || {{innerText: ''}}).innerText"
    )
}

async fn press(page: &Page, key: &str) {
    page.find_element("body").await.expect("body").press_key(key).await.expect("key press");
}

#[test]
fn an_agent_takes_a_card_payment_on_the_desktop() {
    require_tool("chromium", "chromium");
    let started = Instant::now();
    let dir = scratch("desktop");
    tone_file(&dir, "card.ulaw", PAN);
    tone_file(&dir, "expiry.ulaw", EXPIRY);
    tone_file(&dir, "cvc.ulaw", CVC);

    // The agent's phone answers as agent-7 and sends its media to a socket nobody reads.
    let agent_media = UdpSocket::bind("127.0.0.1:0").expect("agent media socket");
    let agent_port = agent_media.local_addr().expect("bound").port();
    let agent = SippSpec::uas("agent", "agent", &dir, 1).key("agent_rtp_port", agent_port).start();
    let ivrpay = Ivrpay::start_with_env(
        &dir,
        &ProfileSpec::to(agent.addr()),
        5,
        &[("IVRPAY_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)],
    );
    assert!(ivrpay.log.text().contains("stored the first admin API key"));

    // The agent's key, made with the CLI while the service runs.
    let out = Command::new(env!("CARGO_BIN_EXE_ivrpay"))
        .args(["keys", "create", "--scope", "agent", "--agent", "agent-7", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .expect("ivrpay keys create");
    assert!(out.status.success(), "keys create: {}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let agent_key = created["key"].as_str().expect("key").to_owned();
    assert_eq!(created["scope"], "agent");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut customer_sipp = None;
    let frames = Arc::new(Mutex::new(Vec::<String>::new()));
    runtime.block_on(async {
        let config = BrowserConfig::builder()
            .chrome_executable(chromium())
            .no_sandbox()
            .user_data_dir(dir.join("chromium-profile"))
            .viewport(Viewport { width: 1280, height: 820, device_scale_factor: Some(1.0), emulating_mobile: false, is_landscape: true, has_touch: false })
            .window_size(1280, 820)
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(Duration::from_secs(30))
            .build()
            .expect("browser config");
        let (mut browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("a tab");
        page.execute(EnableParams::default()).await.expect("network events");
        let mut received = page.event_listener::<EventWebSocketFrameReceived>().await.expect("frames");
        let sink = Arc::clone(&frames);
        let collector = tokio::spawn(async move {
            while let Some(frame) = received.next().await {
                sink.lock().expect("frames").push(frame.response.payload_data.clone());
            }
        });

        // Sign in with the agent key, by keyboard.
        page.goto(format!("http://{}/desktop", ivrpay.http)).await.expect("the desktop loads");
        wait_until(&page, "document.activeElement && document.activeElement.id === 'key'", "the key field focused", Duration::from_secs(10)).await;
        let key_field = page.find_element("#key").await.expect("key field");
        key_field.type_str(&agent_key).await.expect("typing");
        key_field.press_key("Enter").await.expect("Enter");
        wait_until(&page, "document.getElementById('agent-name').textContent === 'agent-7'", "the agent signed in", Duration::from_secs(10)).await;
        wait_until(&page, "document.getElementById('link').textContent === 'Live'", "the live feed", Duration::from_secs(10)).await;

        // The customer calls; the page shows the call.
        let mut sipp = SippSpec::uac("customer", "customer_pay", &dir, ivrpay.sip_udp, 1);
        sipp.extra.extend(["-cid_str".to_owned(), "desktop-%u".to_owned()]);
        let sipp = sipp.start();
        let mut customer = Customer {
            socket: UdpSocket::bind("127.0.0.1:0").expect("cue socket"),
            sipp: sipp.addr(),
            call_id: "desktop-1".to_owned(),
            cues: 0,
        };
        customer_sipp = Some(sipp);
        wait_until(&page, "!document.getElementById('call').hidden && !document.getElementById('take-payment').disabled", "the active call", Duration::from_secs(20)).await;

        // "Take payment": P, amount, Tab to the currency (GBP), Tab to the reference, Enter.
        press(&page, "p").await;
        wait_until(&page, "document.activeElement && document.activeElement.id === 'amount'", "the payment form", Duration::from_secs(5)).await;
        let focused = page.find_element("#amount").await.expect("amount");
        focused.type_str("12.50").await.expect("amount typed");
        focused.press_key("Tab").await.expect("Tab");
        focused.press_key("Tab").await.expect("Tab");
        focused.type_str("INV-2026-0042").await.expect("reference typed");
        focused.press_key("Enter").await.expect("Enter");
        wait_until(&page, "document.getElementById('capturing').textContent === 'Customer is keying: Card number'", "the card number being asked for", Duration::from_secs(10)).await;
        assert_eq!(
            page.evaluate("document.getElementById('summary').textContent").await.expect("summary").into_value::<String>().expect("text"),
            "12.50 GBP · ref INV-2026-0042"
        );

        // The customer keys the card: bullets while typing, then the last four and the brand.
        customer.cue();
        wait_until(&page, &format!("{}.includes('•••• •••• •••• 4242') && {}.includes('Visa') && {}.includes('Valid')", row("payment-card-number"), row("payment-card-number"), row("payment-card-number")), "the masked card number", Duration::from_secs(20)).await;
        wait_until(&page, &format!("{}.includes('Customer keying now')", row("expiration-date")), "the expiry asked for", Duration::from_secs(10)).await;
        customer.cue();
        wait_until(&page, &format!("{}.includes('12/30') && {}.includes('Valid')", row("expiration-date"), row("expiration-date")), "the expiry", Duration::from_secs(20)).await;
        customer.cue();
        wait_until(&page, &format!("{}.includes('•••') && {}.includes('Valid')", row("security-code"), row("security-code")), "the masked security code", Duration::from_secs(20)).await;
        wait_until(&page, "document.getElementById('capturing').textContent.startsWith('All details captured')", "ready to complete", Duration::from_secs(10)).await;

        // The agent asks for the expiry again (key 2), the customer keys it again.
        press(&page, "2").await;
        wait_until(&page, &format!("{}.includes('Customer keying now')", row("expiration-date")), "the expiry asked again", Duration::from_secs(10)).await;
        customer.cue();
        wait_until(&page, "document.getElementById('capturing').textContent.startsWith('All details captured') && !document.getElementById('complete').disabled", "ready again", Duration::from_secs(20)).await;

        // Complete (key C): the sandbox charges the card.
        press(&page, "c").await;
        wait_until(&page, "document.getElementById('result').textContent.startsWith('Payment succeeded')", "the payment succeeded", Duration::from_secs(20)).await;
        let result: String = page.evaluate("document.getElementById('result').textContent").await.expect("result").into_value().expect("text");
        assert!(result.contains("Visa •••• 4242"), "{result}");
        let badge: String = page.evaluate("document.getElementById('status').textContent").await.expect("badge").into_value().expect("text");
        assert_eq!(badge, "Succeeded");

        let png = page
            .screenshot(ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build())
            .await
            .expect("screenshot");
        let shot = artifacts().join("desktop-payment-succeeded.png");
        std::fs::write(&shot, &png).expect("screenshot file");

        // No card data in the page: neither in its markup nor in its text.
        let html = page.content().await.expect("DOM");
        assert_no_card_data("the page's DOM", &html);
        let text: String = page.evaluate("document.body.innerText").await.expect("text").into_value().expect("text");
        assert_no_card_data("the page's text", &text);
        assert!(text.contains("•••• •••• •••• 4242") && text.contains("12/30"), "{text}");

        // Nor in any feed message the browser received.
        let frames = frames.lock().expect("frames").clone();
        assert!(frames.iter().any(|f| f.contains("\"payment.succeeded\"")), "the browser got no payment.succeeded: {frames:?}");
        assert!(frames.iter().filter(|f| f.contains("\"capture.progress\"")).count() >= 16, "fewer progress events than keys");
        for frame in &frames {
            assert_no_card_data("a feed message", frame);
        }
        println!(
            "desktop: signed in, took 12.50 GBP by keyboard, card + expiry + code + expiry again keyed \
             in-band through ivrpay serve, result {result:?}; {} feed messages and the DOM clean; \
             screenshot {}",
            frames.len(),
            shot.display()
        );
        browser.close().await.ok();
        collector.abort();
        handler.abort();
        customer.cue();
    });

    // The customer hung up after the payment; both SIPp sides saw a clean call.
    let customer = customer_sipp.take().expect("customer");
    customer.finish(Duration::from_secs(30)).assert_all("customer", 1, &ivrpay);
    agent.finish(Duration::from_secs(30)).assert_all("agent", 1, &ivrpay);
    // The admin key from the environment works, and the service's view agrees with the page.
    let (status, body) = ivrpay.get_with_key("/v1/calls?state=all", ADMIN_KEY);
    assert_eq!(status, 200, "{body}");
    let calls: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(calls["data"][0]["agent"], "agent-7", "{body}");
    let (status, _) = ivrpay.get_with_key("/v1/calls", "ivrpay_not_a_key");
    assert_eq!(status, 401);
    drop(agent_media);
    println!("desktop test took {:.1} s", started.elapsed().as_secs_f64());
}
