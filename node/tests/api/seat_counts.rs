//! A full campaign on the Postgres path: the seat pick's exact counts are
//! shared by the picks asking at once, and none takes the answer of a
//! count that started before it asked; the losers are refused several to
//! a transaction, in the single transaction's order.

use crate::helpers::*;
use coupon_node::domain::idempotency::IdempotencyKey;
use coupon_node::metrics::Metrics;
use coupon_node::redeem::seat_counts::SeatCounts;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A Postgres-engine node with a shared campaign `code` of `seats` seats,
/// every one taken by a redeem of this node (user `winner-i`, key `k`);
/// the campaign's id.
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

fn seat_counts_in(metrics: &Metrics) -> f64 {
    sample(&metrics.render(), "coupon_seat_counts_total")
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// 200 picks asking at once for a count of one campaign: counted each
/// (the old path, in each loser's own transaction), that read every seat
/// 200 times; shared, the asks that arrive while a count runs wait for
/// the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_picks_asking_at_once_share_a_few_seat_counts() {
    let (app, id) = full_campaign("SHAREPG", 3).await;
    let metrics = Arc::new(Metrics::new());
    let counts = SeatCounts::spawn(&app.db, metrics.clone());
    let answers = join_all((0..200).map(|_| counts.of(&id))).await;
    assert!(answers.iter().all(|a| matches!(a, Ok(3))), "{answers:?}");
    let n = seat_counts_in(&metrics);
    assert!(n <= 10.0, "{n} seat counts for 200 asks at once");
}

/// A seat released while a count that saw the campaign full is still
/// running is seen by the next ask: it waits for a count of its own
/// instead of sharing the running one (which says every seat is taken).
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seat_released_during_a_count_is_seen_by_the_next_ask() {
    let scenario = fail::FailScenario::setup();
    let (app, id) = full_campaign("RELPG", 3).await;
    let metrics = Arc::new(Metrics::new());
    let counts = SeatCounts::spawn(&app.db, metrics.clone());
    // Each count answers 1 s after its read.
    fail::cfg("after_seat_count", "return(1000)").unwrap();
    let early = {
        let (counts, id) = (counts.clone(), id.clone());
        tokio::spawn(async move { counts.of(&id).await })
    };
    // The count has started (the metric rises before its read), and has
    // read the campaign full (a read of three rows, given 200 ms).
    for _ in 0..500 {
        if seat_counts_in(&metrics) > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seat_counts_in(&metrics), 1.0);
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
    let next = counts.of(&id).await;
    let early = early.await.unwrap();
    fail::remove("after_seat_count");
    scenario.teardown();
    assert!(matches!(early, Ok(3)), "{early:?}");
    assert!(
        matches!(next, Ok(2)),
        "the released seat was not seen: {next:?}"
    );
}

/// At once on a full campaign: new users, the winners retrying their
/// key, the winners with a new key, and a key whose lock another
/// transaction holds. The batch refuses only what the single transaction
/// refuses, in its order: a retry of a success replays, a key in flight
/// answers 409 `idempotency_in_flight`, a user with no use left
/// `already_redeemed`, the rest `exhausted`; and it did refuse them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_campaigns_losers_are_refused_in_batches_in_the_single_paths_order() {
    const WINNERS: usize = 5;
    const NEW: usize = 200;
    let (app, id) = full_campaign("BATCHPG", WINNERS).await;
    let key = IdempotencyKey::parse("busy-key").unwrap();
    let mut held = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key.lock_key(&id, "busy"))
        .execute(&mut *held)
        .await
        .unwrap();
    let mut asks: Vec<(String, String)> = Vec::new();
    for i in 0..WINNERS {
        asks.push((format!("winner-{i}"), "k".into()));
        asks.push((format!("winner-{i}"), "k2".into()));
    }
    asks.push(("busy".into(), "busy-key".into()));
    asks.extend((0..NEW).map(|i| (format!("late-{i}"), format!("key-{i}"))));
    let answers = join_all(
        asks.iter()
            .map(|(user, key)| app.redeem(user, key, "BATCHPG", "o")),
    )
    .await;
    held.rollback().await.unwrap();
    let mut t: HashMap<(String, String), usize> = HashMap::new();
    for ((user, key), (s, b, _)) in asks.iter().zip(&answers) {
        let who = match user.split('-').next().unwrap() {
            "winner" if key == "k" => "winner's retry",
            "winner" => "winner's new key",
            other => other,
        };
        let what = match s.is_success() {
            true => s.as_u16().to_string(),
            false => format!("{} {}", s.as_u16(), b["code"].as_str().unwrap_or("")),
        };
        *t.entry((who.into(), what)).or_default() += 1;
    }
    let want: HashMap<(String, String), usize> = [
        (("winner's retry", "200"), WINNERS),
        (("winner's new key", "409 already_redeemed"), WINNERS),
        (("busy", "409 idempotency_in_flight"), 1),
        (("late", "410 exhausted"), NEW),
    ]
    .into_iter()
    .map(|((w, s), n)| ((w.into(), s.into()), n))
    .collect();
    assert_eq!(t, want);
    assert_eq!(app.active_redemptions(&id).await, WINNERS as i64);
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let refused = sample(&text, "coupon_batched_refusals_total{how=\"refused\"}");
    assert!(
        refused >= (NEW + WINNERS) as f64 * 0.9,
        "{refused} refused by a batch of {} refusals",
        NEW + WINNERS
    );
}
