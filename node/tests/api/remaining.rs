//! Validate's `remaining` when Postgres must count it (`redeem/remaining.rs`):
//! one count per campaign at a time, shared, aging out. The Postgres-only
//! engine counts for every validate; the Redis engine falls back to the
//! same counts while Redis cannot answer for a campaign. The tests hold the
//! `codes` table locked so the counts that run at once can be seen waiting.

use crate::helpers::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A node on the Postgres-only engine with a pool campaign `code` of
/// `count` codes.
async fn pool_on_postgres(code: &str, count: i64) -> Arc<TestApp> {
    let app = TestApp::spawn_with(|c| {
        c.burst.claim_engine = coupon_node::config::ClaimEngineKind::Postgres
    })
    .await;
    let c = app.campaign(json!({"kind": "pool", "code": code})).await;
    app.generate(c["campaign_id"].as_str().unwrap(), json!({"count": count}))
        .await;
    Arc::new(app)
}

/// `codes` locked until the returned transaction ends: counts wait.
async fn lock_codes(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE codes IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// `n` validates of `code` at once, by users `{prefix}0…`.
fn validates(
    app: &Arc<TestApp>,
    code: &'static str,
    prefix: &'static str,
    n: usize,
) -> JoinHandle<Vec<(StatusCode, Value)>> {
    let app = app.clone();
    tokio::spawn(async move {
        join_all((0..n).map(|i| {
            let app = app.clone();
            async move {
                let token = app.user(&format!("{prefix}{i}"));
                let body = json!({"code": code});
                let resp = app.post("/v1/coupons/validate", Some(&token), &body).await;
                (
                    resp.status(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        }))
        .await
    })
}

/// Every validate of a wave answered 200 with `remaining`.
async fn all_valid(wave: JoinHandle<Vec<(StatusCode, Value)>>, remaining: i64) {
    for (s, body) in wave.await.unwrap() {
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["remaining"], remaining, "{body}");
    }
}

/// Counts of codes waiting on the lock now.
async fn counts_waiting(app: &TestApp) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE 'SELECT count(*) FROM codes WHERE campaign_id%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Validates arriving together share one count: it reads every unused
/// code of the pool, and one per validate melted Postgres exactly when
/// Redis was gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_validates_at_once_share_one_count_of_a_pools_codes() {
    let app = pool_on_postgres("COUNTONCE", 2000).await;
    let lock = lock_codes(&app).await;
    let answers = validates(&app, "COUNTONCE", "c", 300);
    let started = std::time::Instant::now();
    while counts_waiting(&app).await == 0 && started.elapsed() < Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the rest of the 300 arrive and queue behind the lock too (each
    // validate gives up after 3 s, so the lock goes well before that).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = counts_waiting(&app).await;
    lock.rollback().await.unwrap();
    all_valid(answers, 2000).await;
    assert_eq!(counts, 1, "counts of the pool's codes waiting at once");
}

/// The shared count is a hint that ages out: a validate right after a
/// redeem may still show the count from before it, and within the count's
/// freshness (at most 5 s) validates show the code gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_count_of_a_pools_codes_ages_out() {
    let app = pool_on_postgres("COUNTAGES", 20).await;
    let remaining = || async {
        let (s, v) = validates(&app, "COUNTAGES", "looker", 1).await.unwrap()[0].clone();
        assert_eq!(s, StatusCode::OK, "{v}");
        v["remaining"].as_i64().unwrap_or_else(|| panic!("{v}"))
    };
    assert_eq!(remaining().await, 20);
    let (s, body, _) = app.redeem("buyer", "k1", "COUNTAGES", "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let started = std::time::Instant::now();
    loop {
        if remaining().await == 19 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "validate still counts the redeemed code after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A count slower than the validates waiting for it (they answer 503
/// after the read limit) still finishes, and the validates that come after
/// share it instead of starting counts of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_count_that_outlives_its_validates_serves_the_next_ones() {
    let app = pool_on_postgres("SLOWCOUNT", 50).await;
    let lock = lock_codes(&app).await;
    for (s, body) in validates(&app, "SLOWCOUNT", "first", 20).await.unwrap() {
        assert_problem(s, &body, 503, "unavailable");
    }
    let second = validates(&app, "SLOWCOUNT", "second", 20);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = counts_waiting(&app).await;
    lock.rollback().await.unwrap();
    all_valid(second, 50).await;
    assert_eq!(
        counts, 1,
        "counts waiting at once after the first wave gave up"
    );
}

/// A count that finished after every validate waiting for it gave up is
/// not served once it has expired: the next validate counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_count_nobody_waited_for_is_not_served_once_expired() {
    let app = pool_on_postgres("LATECOUNT", 50).await;
    let lock = lock_codes(&app).await;
    let (s, body) = validates(&app, "LATECOUNT", "early", 1).await.unwrap()[0].clone();
    assert_problem(s, &body, 503, "unavailable");
    lock.rollback().await.unwrap();
    // The count finishes now, unwatched; it serves for at most 5 s.
    let (s, body, _) = app.redeem("buyer", "k1", "LATECOUNT", "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    tokio::time::sleep(coupon_node::redeem::remaining::MAX_FRESH + Duration::from_millis(500))
        .await;
    let (s, body) = validates(&app, "LATECOUNT", "late", 1).await.unwrap()[0].clone();
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["remaining"], 49, "an expired count was served: {body}");
}
