//! Rate limits on redeem. On the Redis engine the claim script charges
//! them in its own round trip; a redeem refused before its claim is charged
//! on its own. Either way one budget per user, shared with validate, and a
//! caller over it gets 429 whatever else its request would have got.
//! (The Redis tests share one Redis per process: each test has its own users.)

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn slow_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.burst.user_rate = 0.2;
        c.burst.user_burst = 3;
    })
    .await
}

async fn validate(app: &TestApp, user: &str, code: &str) -> StatusCode {
    app.post(
        "/v1/coupons/validate",
        Some(&app.user(user)),
        &json!({"code": code}),
    )
    .await
    .status()
}

#[tokio::test]
async fn a_redeem_over_the_users_limit_gets_429_and_claims_nothing() {
    let app = slow_app().await;
    let c = app
        .campaign(
            json!({"kind": "shared", "code": "LIMITED", "total_limit": 50, "per_user_limit": 5}),
        )
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    for i in 0..3 {
        let (s, b, _) = app
            .redeem("lim-greedy", &format!("k{i}"), "LIMITED", &format!("o{i}"))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b, h) = app.redeem("lim-greedy", "k3", "LIMITED", "o3").await;
    assert_problem(s, &b, 429, "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    assert_eq!(app.active_redemptions(id).await, 3);
    if redis_engine() {
        // The refused claim took no use and no seat.
        let mut r = redis::Client::open(stores().redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        assert_eq!(redis_free_seats(&mut r, id, 50).await, 47);
    }
    // Another user's budget is their own.
    let (s, b, _) = app.redeem("lim-patient", "k0", "LIMITED", "o").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn redeems_refused_before_their_claim_count_toward_the_limit() {
    let app = slow_app().await;
    app.campaign(json!({"kind": "shared", "code": "GUESSME", "total_limit": 5}))
        .await;
    app.campaign(json!({"kind": "shared", "code": "NOTYET", "total_limit": 5,
        "starts_at": "2098-01-01T00:00:00Z"}))
        .await;
    // A guesser's three misses: an unknown code, an unstorable one, a closed
    // campaign. None reaches a claim, and each spends a call.
    let (s, b, _) = app.redeem("lim-guesser", "k1", "GUESSMF", "o").await;
    assert_problem(s, &b, 404, "unknown_code");
    let (s, b, _) = app.redeem("lim-guesser", "k2", "GUESS\u{0}ME", "o").await;
    assert_problem(s, &b, 400, "invalid_request");
    let (s, b, _) = app.redeem("lim-guesser", "k3", "NOTYET", "o").await;
    assert_problem(s, &b, 410, "not_started");
    // The fourth, on a code that would be redeemed, is over the limit.
    let (s, b, _) = app.redeem("lim-guesser", "k4", "GUESSME", "o").await;
    assert_problem(s, &b, 429, "rate_limited");
    // And once over it, a miss is 429 as well, not its 404.
    let (s, b, _) = app.redeem("lim-guesser", "k5", "GUESSMF", "o").await;
    assert_problem(s, &b, 429, "rate_limited");
}

#[tokio::test]
async fn validate_and_redeem_spend_one_budget() {
    let app = slow_app().await;
    app.campaign(json!({"kind": "shared", "code": "ONEPURSE", "total_limit": 5}))
        .await;
    for _ in 0..3 {
        assert_eq!(
            validate(&app, "lim-shopper", "ONEPURSE").await,
            StatusCode::OK
        );
    }
    let (s, b, _) = app.redeem("lim-shopper", "k1", "ONEPURSE", "o").await;
    assert_problem(s, &b, 429, "rate_limited");
    // A redeem's call counts against a later validate too.
    for i in 0..3 {
        let (s, b, _) = app
            .redeem("lim-buyer", &format!("k{i}"), "ONEPURSE", &format!("o{i}"))
            .await;
        assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    }
    assert_eq!(
        validate(&app, "lim-buyer", "ONEPURSE").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_limited_redeem_writes_no_attempt_row() {
    let app = slow_app().await;
    app.campaign(json!({"kind": "shared", "code": "NOISY", "total_limit": 5, "per_user_limit": 5}))
        .await;
    for i in 0..5 {
        let _ = app
            .redeem("lim-noisy", &format!("k{i}"), "NOISY", &format!("o{i}"))
            .await;
    }
    // A later attempt by someone else: once it is in the log, every earlier
    // one that was going to be is too (one writer, in order).
    let _ = app.redeem("lim-marker", "k0", "NOISY", "o").await;
    let mut logged = Vec::<Value>::new();
    for _ in 0..50 {
        let marker: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM redemption_attempts WHERE user_id = 'lim-marker'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if marker == 1 {
            logged = sqlx::query_scalar(
                "SELECT to_jsonb(result) FROM redemption_attempts WHERE user_id = 'lim-noisy' ORDER BY attempt_id",
            )
            .fetch_all(&app.db)
            .await
            .unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        logged,
        vec![json!("redeemed"); 3],
        "the three calls within the limit, and none of the two over it"
    );
}

#[tokio::test]
async fn redeems_from_one_ip_spend_its_budget_whoever_the_user() {
    let app = TestApp::spawn_with(|c| {
        c.burst.ip_rate = 0.2;
        c.burst.ip_burst = 2;
    })
    .await;
    app.campaign(json!({"kind": "shared", "code": "CROWDED", "total_limit": 50}))
        .await;
    for i in 0..2 {
        let (s, b, _) = app.redeem(&format!("lim-ip{i}"), "k", "CROWDED", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b, _) = app.redeem("lim-ip2", "k", "CROWDED", "o").await;
    assert_problem(s, &b, 429, "rate_limited");
}
