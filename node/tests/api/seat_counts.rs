//! The Postgres-only engine's exact seat counts: once a campaign is full,
//! every losing redeem needs one before it may answer `exhausted`. The
//! losers asking at once share a count, and none takes the answer of a
//! count that started before it asked.

use crate::concurrency::{burst, tally};
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A Postgres-engine node with a shared campaign `code` of `seats` seats,
/// every one taken by a redeem of this node; the campaign's id.
async fn full_campaign(code: &str, seats: usize) -> (Arc<TestApp>, String) {
    let app = TestApp::spawn_with(|c| {
        c.burst.claim_engine = coupon_node::config::ClaimEngineKind::Postgres
    })
    .await;
    let c = app
        .campaign(json!({"kind": "shared", "code": code, "total_limit": seats, "release_on_refund": true}))
        .await;
    for i in 0..seats {
        let (s, b, _) = app.redeem(&format!("winner-{i}"), "k", code, "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    (Arc::new(app), id)
}

/// 300 losers at once on a full campaign: a count each (the old path, in
/// each loser's own transaction) read every seat 300 times; shared, a count
/// serves every loser that asked while the one before it ran. Each count
/// is held 50 ms, time enough for the losers on the pool's other
/// connections to reach theirs.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_losers_of_a_full_campaign_share_their_seat_counts() {
    const LOSERS: usize = 300;
    let scenario = fail::FailScenario::setup();
    let (app, id) = full_campaign("FULLPG", 5).await;
    let before = app.metric("coupon_seat_counts_total").await;
    fail::cfg("after_seat_count", "return(50)").unwrap();
    let results = burst(
        &app,
        LOSERS,
        |i| format!("late-{i}"),
        |i| format!("key-{i}"),
        "FULLPG",
    )
    .await;
    fail::remove("after_seat_count");
    scenario.teardown();
    let t = tally(&results);
    assert_eq!(t.get("410 exhausted"), Some(&LOSERS), "{t:?}");
    let counts = app.metric("coupon_seat_counts_total").await - before;
    assert!(
        counts <= (LOSERS / 3) as f64,
        "{counts} seat counts for {LOSERS} losers"
    );
    assert_eq!(app.active_redemptions(&id).await, 5);
}

/// A seat released while a count that saw the campaign full is still
/// running goes to the next redeem: it waits for a count of its own
/// instead of sharing the running one (which would answer `exhausted`).
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seat_released_during_a_count_goes_to_the_next_redeem() {
    let scenario = fail::FailScenario::setup();
    let (app, id) = full_campaign("RELPG", 3).await;
    let before = app.metric("coupon_seat_counts_total").await;
    // The count answers 1 s after its read.
    fail::cfg("after_seat_count", "return(1000)").unwrap();
    let early = {
        let app = app.clone();
        tokio::spawn(async move { app.redeem("early", "k", "RELPG", "o").await })
    };
    // The count has started (the metric rises before its read), and has
    // read the campaign full (a read of three rows, given 200 ms).
    for _ in 0..500 {
        if app.metric("coupon_seat_counts_total").await > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(app.metric("coupon_seat_counts_total").await > before);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rid: String = sqlx::query_scalar(
        "SELECT redemption_id FROM redemptions WHERE campaign_id = $1 AND user_id = 'winner-0'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let rel = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user("winner-0")),
            &json!({"reason": "refund"}),
        )
        .await;
    assert_eq!(rel.status(), StatusCode::OK);
    let (s, b, _) = app.redeem("next", "k", "RELPG", "o").await;
    let (early_s, early_b, _) = early.await.unwrap();
    fail::remove("after_seat_count");
    scenario.teardown();
    assert_eq!(s, StatusCode::CREATED, "the released seat: {b}");
    assert_eq!(early_s, StatusCode::GONE, "{early_b}");
    assert_eq!(app.active_redemptions(&id).await, 3);
}
