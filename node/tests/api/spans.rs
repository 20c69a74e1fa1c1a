//! Every coupon request is traced in one span that names the region, the
//! code's slot and the campaign, so an operator can follow one slot or one
//! campaign through the logs. The fields are declared on the request span
//! and filled in by the handler: a field the span does not declare is
//! dropped by `record()` without a word, which only a test can notice.
//!
//! The subscriber is process-wide; nextest runs each test in its own
//! process, and no other test in this binary installs one.

use crate::helpers::TestApp;
use coupon_testkit::spans::{has_field, SpanLog};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_and_redeem_spans_name_region_slot_and_campaign() {
    let logs = SpanLog::install();

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
        let lines = logs.closed_soon(route).await;
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
