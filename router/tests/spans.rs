//! A forwarded coupon request is traced in one span that names the region
//! and the code's slot, so an operator can follow one slot through a
//! router's log. `by_code` records the slot into the request span; a field
//! the span does not declare is dropped by `record()` without a word, which
//! only a test can notice (it was, for a while).
//!
//! The router runs in this process with no ownership map and no reachable
//! node: the slot is known from the body before the forward is refused.
//! The subscriber is process-wide; nextest runs each test in its own
//! process.

use clap::Parser;
use coupon_router::config::RouterConfig;
use coupon_router::state::AppState;
use coupon_testkit::issuer::Issuer;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn closed(&self, route: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        let needle = format!("route={route}");
        text.lines()
            .filter(|l| l.contains(&needle) && l.contains(" close "))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_redeem_span_names_region_and_slot() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("no other subscriber in this process");

    let dir = coupon_testkit::scratch_root()
        .join(format!("router-spans-{}", coupon_testkit::unique_tag()));
    let (key, _) = Issuer::generate("svc", "svc")
        .write(&dir, "router-us")
        .expect("write service key");
    // Nothing listens on these: no map, no node.
    let cfg = RouterConfig::try_parse_from([
        "coupon-router",
        "--region=us",
        "--raft-urls=http://127.0.0.1:9",
        &format!("--service-key={}", key.display()),
        "--service-kid=router-us",
        "--node-url=us=http://127.0.0.1:9",
        "--connect-timeout-ms=200",
        "--forward-timeout-ms=500",
    ])
    .expect("router config parses");
    let state = AppState::start(cfg).expect("router state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        coupon_router::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let code = "SPANSLOT";
    let slot = coupon_core::Code::parse(code)
        .expect("a valid code")
        .slot()
        .get();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/coupons/redeem"))
        .header("Idempotency-Key", "span-key")
        .json(&serde_json::json!({"code": code, "order_id": "o1"}))
        .send()
        .await
        .expect("the router answers");
    assert!(resp.status().is_server_error(), "{}", resp.status());

    let route = "/v1/coupons/redeem";
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = logs.closed(route);
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let want = [("region", "us".to_owned()), ("slot", slot.to_string())];
    assert!(
        lines
            .iter()
            .any(|l| want.iter().all(|(k, v)| l.contains(&format!("{k}={v}")))),
        "no closed span of {route} carries {want:?}: {lines:#?}"
    );
}
