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
    let app = TestApp::spawn_with(|c| {
        c.burst.claim_engine = coupon_node::config::ClaimEngineKind::Postgres
    })
    .await;
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
