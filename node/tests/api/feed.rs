//! The events feed is complete: a consumer following `next` sees every
//! committed event, however long a transaction stayed open around its polls.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

async fn poll(app: &TestApp, after: &str, seen: &mut HashSet<String>) -> String {
    let page: Value = app
        .get(
            &format!("/v1/events?after={after}&limit=1000"),
            Some(&app.admin()),
        )
        .await
        .json()
        .await
        .unwrap();
    for e in page["events"].as_array().unwrap() {
        seen.insert(e["id"].as_str().unwrap().to_owned());
    }
    page["next"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_never_skips_an_event_of_a_transaction_open_across_its_polls() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "FEEDGAP", "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    // A transaction writes its event first (taking the lower seq) and stays
    // open well past any settle delay...
    let mut slow = app.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (event_id, type, campaign_id, data) \
         VALUES ('slow:coupon.redeemed', 'coupon.redeemed', $1, '{}')",
    )
    .bind(id)
    .execute(&mut *slow)
    .await
    .unwrap();
    // ...while a redeem commits after it.
    let (s, r, _) = app.redeem("u1", "k1", "FEEDGAP", "o").await;
    assert_eq!(s, StatusCode::CREATED);
    let fast = format!("{}:coupon.redeemed", r["redemption_id"].as_str().unwrap());
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for _ in 0..3 {
        cursor = poll(&app, &cursor, &mut seen).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    slow.commit().await.unwrap();
    for _ in 0..30 {
        cursor = poll(&app, &cursor, &mut seen).await;
        if seen.contains(&fast) && seen.contains("slow:coupon.redeemed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen.contains(&fast),
        "the committed redeem never appeared: {seen:?}"
    );
    assert!(
        seen.contains("slow:coupon.redeemed"),
        "the cursor moved past the slow transaction's event: {seen:?}"
    );
}

#[tokio::test]
async fn the_feed_accepts_its_own_region_and_names_another() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/events?region=us", Some(&app.admin())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/v1/events?region=eu", Some(&app.admin())).await;
    let s = r.status();
    let b: Value = r.json().await.unwrap();
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "region");
    // Cursors from before the (xid, seq) cursor still work.
    let r = app.get("/v1/events?after=0", Some(&app.admin())).await;
    assert_eq!(r.status(), StatusCode::OK);
}
