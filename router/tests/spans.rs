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
use coupon_testkit::spans::{has_field, SpanLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_redeem_span_names_region_and_slot() {
    let logs = SpanLog::install();

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
    let lines = logs.closed_soon(route).await;
    let slot = slot.to_string();
    let want = [("region", "us"), ("slot", slot.as_str())];
    assert!(
        lines
            .iter()
            .any(|l| want.iter().all(|(k, v)| has_field(l, k, v))),
        "no closed span of {route} carries {want:?}: {lines:#?}"
    );
}
