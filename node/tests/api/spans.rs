//! Every coupon request is traced in one span that names the region, the
//! code's slot and the campaign, so an operator can follow one slot or one
//! campaign through the logs. The fields are declared on the request span
//! and filled in by the handler: a field the span does not declare is
//! dropped by `record()` without a word, which only a test can notice.
//!
//! The subscriber is process-wide; nextest runs each test in its own
//! process, and no other test in this binary installs one.

use crate::helpers::TestApp;
use serde_json::json;
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
    /// The span-close lines of requests to `route`.
    fn closed(&self, route: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        let needle = format!("route={route}");
        text.lines()
            .filter(|l| l.contains(&needle) && l.contains(" close "))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_and_redeem_spans_name_region_slot_and_campaign() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("no other subscriber in this process");

    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "TRACESPAN", "total_limit": 5}))
        .await;
    let campaign = c["campaign_id"].as_str().unwrap();
    let slot = c["slot"].as_i64().unwrap().to_string();
    let (status, body, headers) = app.redeem("span-user", "span-key", "TRACESPAN", "o1").await;
    assert_eq!(status, 201, "{body}");
    let region = headers["coupon-region"].to_str().unwrap().to_owned();
    let resp = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("span-other")),
            &json!({"code": "TRACESPAN"}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    for route in ["/v1/coupons/redeem", "/v1/coupons/validate"] {
        // The span closes just after the answer is written.
        let mut lines = Vec::new();
        for _ in 0..50 {
            lines = logs.closed(route);
            if !lines.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let want = [
            ("region", region.as_str()),
            ("slot", slot.as_str()),
            ("campaign", campaign),
        ];
        assert!(
            lines
                .iter()
                .any(|l| want.iter().all(|(k, v)| has_field(l, k, v))),
            "no closed span of {route} carries {want:?}; closed spans: {lines:#?}"
        );
    }
}

/// `key=value`, or `key="value"` (how the formatter writes a recorded str).
fn has_field(line: &str, key: &str, value: &str) -> bool {
    line.contains(&format!("{key}={value} "))
        || line.contains(&format!("{key}={value}}}"))
        || line.contains(&format!("{key}={value:?}"))
}
