//! `total_limit` is bounded, and nothing the node keeps grows with it: a
//! campaign with the largest cap is created, seeded and redeemed as fast as
//! one with ten seats, on the burst path and on the Postgres-only path.

use crate::helpers::*;
use coupon_node::burst::keys::Keys;
use coupon_node::domain::campaign::MAX_TOTAL_LIMIT;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A node whose claim engine is Postgres alone.
async fn postgres_engine_app() -> TestApp {
    TestApp::spawn_with(|c| c.burst.claim_engine = coupon_node::config::ClaimEngineKind::Postgres)
        .await
}

fn body(code: &str, total: i64) -> Value {
    json!({
        "name": "Huge", "kind": "shared", "code": code, "total_limit": total,
        "discount": {"type": "free_shipping"}, "per_user_limit": 1,
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
    })
}

#[tokio::test]
async fn a_cap_above_the_bound_is_refused_and_the_largest_cap_costs_nothing() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/campaigns",
            Some(&app.admin()),
            &body("TOOHUGE", 2_000_000_000),
        )
        .await;
    let s = r.status();
    let b: Value = r.json().await.unwrap();
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "total_limit");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0, "refused means not created");

    let started = Instant::now();
    let r = app
        .http
        .post(format!("{}/v1/campaigns", app.base))
        .bearer_auth(app.admin())
        .json(&body("HUGE", MAX_TOTAL_LIMIT as i64))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("create answers within 5 s");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "create took {:?}",
        started.elapsed()
    );
    let id = r.json::<Value>().await.unwrap()["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b, _) = app.redeem("u1", "k1", "HUGE", "o").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut r = redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let listed: i64 = r.scard(Keys::new(&id).free()).await.unwrap();
    assert!(listed <= 1, "redis lists {listed} seats");
    assert_eq!(
        redis_free_seats(&mut r, &id, MAX_TOTAL_LIMIT as i64).await,
        MAX_TOTAL_LIMIT as i64 - 1
    );
    let v: Value = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u2")),
            &json!({"code": "HUGE"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["remaining"], MAX_TOTAL_LIMIT as i64 - 1, "{v}");
}

#[tokio::test]
async fn the_postgres_seat_pick_does_not_grow_with_the_cap() {
    let app = postgres_engine_app().await;
    app.campaign(json!({"kind": "shared", "code": "HUGEPG", "total_limit": MAX_TOTAL_LIMIT}))
        .await;
    for i in 0..5 {
        let started = Instant::now();
        let (s, b, _) = app.redeem(&format!("u{i}"), "k", "HUGEPG", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "redeem took {:?}",
            started.elapsed()
        );
    }
}

/// Once the highest seat is taken, a seat given back below it by a release
/// is found and used, on the Postgres-only path; only a campaign with
/// every seat taken answers `exhausted`.
#[tokio::test]
async fn the_postgres_seat_pick_reuses_a_released_seat_below_the_top() {
    let app = postgres_engine_app().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "HOLEPG", "total_limit": 3, "release_on_refund": true}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let mut ids = Vec::new();
    for u in ["u1", "u2", "u3"] {
        let (s, b, _) = app.redeem(u, "k", "HOLEPG", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        ids.push(b["redemption_id"].as_str().unwrap().to_owned());
    }
    let (s, b, _) = app.redeem("u4", "k", "HOLEPG", "o").await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    // Release a seat that is not the top one.
    let mut below = None;
    for (rid, u) in ids.iter().zip(["u1", "u2", "u3"]) {
        let seat: i32 =
            sqlx::query_scalar("SELECT seat_no FROM redemptions WHERE redemption_id = $1")
                .bind(rid)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if seat < 3 {
            below = Some((rid.clone(), u));
            break;
        }
    }
    let (rid, user) = below.expect("two of three seats are below the top");
    let rel = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user(user)),
            &json!({"reason": "refund"}),
        )
        .await;
    assert_eq!(rel.status(), StatusCode::OK);
    let (s, b, _) = app.redeem("u5", "k", "HOLEPG", "o").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "the released seat was not found: {b}"
    );
    let (s, b, _) = app.redeem("u6", "k", "HOLEPG", "o").await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    assert_eq!(app.active_redemptions(id).await, 3);
}

/// The Postgres-only path counts a campaign's seats (a read of every seat
/// taken) once, then picks above its own running estimate; only when the
/// seats there were taken behind its back does it count again. The
/// estimate never answers `exhausted`: a campaign another writer filled up
/// to one free seat far below the estimate still gets that seat.
#[tokio::test]
async fn the_postgres_seat_pick_counts_once_and_again_only_when_its_estimate_misses() {
    let app = postgres_engine_app().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "ESTPG", "total_limit": 5000}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    for i in 0..40 {
        let (s, b, _) = app.redeem(&format!("u{i}"), "k", "ESTPG", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    assert_eq!(
        app.metric("coupon_seat_counts_total").await,
        1.0,
        "40 picks, one count"
    );
    // Another writer takes every seat but one, which lies neither in the
    // window above the node's estimate (41..=1064) nor in the window below
    // the cap (3977..=5000): only the probe down to seat 1 after a count
    // finds it.
    let free: i32 = sqlx::query_scalar(
        "SELECT min(s) FROM generate_series(2000, 3000) s WHERE NOT EXISTS \
         (SELECT 1 FROM redemptions WHERE campaign_id = $1 AND seat_no = s)",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    take_seats_but(&app, &c, 5000, &[free]).await;
    let (s, b, _) = app.redeem("last", "k", "ESTPG", "o").await;
    assert_eq!(s, StatusCode::CREATED, "seat {free} was free: {b}");
    let seat: i32 = sqlx::query_scalar(
        "SELECT seat_no FROM redemptions WHERE campaign_id = $1 AND user_id = 'last'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seat, free);
    let (s, b, _) = app.redeem("late", "k", "ESTPG", "o").await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    assert_eq!(app.active_redemptions(id).await, 5000);
    assert!(app.metric("coupon_seat_counts_total").await >= 2.0);
}

/// The last free seats of a campaign larger than the pick's window are
/// gaps below it. Once a count has led a pick down to one, the node's next
/// picks go straight for the gaps: ten gaps, ten winners, one count to find
/// them and one more to answer `exhausted` (not a count and a full-window
/// probe per pick, which made the tail of a 3,000-seat launch on this
/// engine crawl at 94 winners/s with 503s).
#[tokio::test]
async fn the_postgres_seat_pick_goes_for_the_gaps_below_a_full_window_without_counting_again() {
    let app = postgres_engine_app().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "GAPSPG", "total_limit": 5000}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let (s, b, _) = app.redeem("first", "k", "GAPSPG", "o").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Another writer takes every seat but ten gaps, all below the window
    // at the cap (3977..=5000).
    let gaps: Vec<i32> = (1..=10).map(|i| i * 350).collect();
    take_seats_but(&app, &c, 5000, &gaps).await;
    let counted = app.metric("coupon_seat_counts_total").await;
    for i in 0..10 {
        let (s, b, _) = app.redeem(&format!("gap{i}"), "k", "GAPSPG", "o").await;
        assert_eq!(s, StatusCode::CREATED, "gap {i}: {b}");
    }
    let (s, b, _) = app.redeem("late", "k", "GAPSPG", "o").await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    assert_eq!(app.active_redemptions(id).await, 5000);
    let counts = app.metric("coupon_seat_counts_total").await - counted;
    assert!(
        counts <= 2.0,
        "{counts} counts for ten gaps and one refusal"
    );
}

/// Another writer takes every seat of campaign `c` (cap `total`) not yet
/// taken, except `free`.
async fn take_seats_but(app: &TestApp, c: &Value, total: i32, free: &[i32]) {
    sqlx::query(
        "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
         idempotency_key, request_hash, code, use_no, seat_no, discount) \
         SELECT 'other-' || s, $1, $2, 1, 'other' || s, 'o', 'k', 'h', $5, 1, s, \
                '{\"type\": \"percent\", \"value\": 10}'::jsonb \
         FROM generate_series(1, $3) s WHERE s <> ALL($4) AND NOT EXISTS \
         (SELECT 1 FROM redemptions WHERE campaign_id = $1 AND seat_no = s)",
    )
    .bind(c["campaign_id"].as_str().unwrap())
    .bind(c["slot"].as_i64().unwrap() as i32)
    .bind(total)
    .bind(free)
    .bind(c["code"].as_str().unwrap())
    .execute(&app.db)
    .await
    .expect("take the other seats");
}
