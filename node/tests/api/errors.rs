//! Every reason code of docs/api.md the node's endpoints can produce, each from a
//! real request, with RFC 9457 bodies that name the field.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn problem(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    (status, resp.json().await.unwrap())
}

fn base_campaign() -> Value {
    json!({"name": "x", "kind": "shared", "code": "BASE", "total_limit": 10, "per_user_limit": 1,
           "discount": {"type": "free_shipping"},
           "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"})
}

#[tokio::test]
async fn bad_json_missing_and_ill_typed_fields_are_invalid_requests_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let raw = app
        .http
        .post(format!("{}/v1/campaigns", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, b) = problem(raw).await;
    assert_problem(s, &b, 400, "invalid_request");

    let mut missing = base_campaign();
    missing.as_object_mut().unwrap().remove("per_user_limit");
    let (s, b) = problem(app.post("/v1/campaigns", Some(&admin), &missing).await).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "per_user_limit");

    let mut no_limit = base_campaign();
    no_limit.as_object_mut().unwrap().remove("total_limit");
    let (s, b) = problem(app.post("/v1/campaigns", Some(&admin), &no_limit).await).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(
        b["field"], "total_limit",
        "no silent default for a required field"
    );

    let mut wrong = base_campaign();
    wrong["total_limit"] = json!("lots");
    let (s, b) = problem(app.post("/v1/campaigns", Some(&admin), &wrong).await).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "total_limit");

    let mut nested = base_campaign();
    nested["discount"] = json!({"type": "amount", "amount_minor": 100});
    let (s, b) = problem(app.post("/v1/campaigns", Some(&admin), &nested).await).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "discount.currency");

    let mut window = base_campaign();
    window["ends_at"] = json!("2019-01-01T00:00:00Z");
    let (s, b) = problem(app.post("/v1/campaigns", Some(&admin), &window).await).await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (400, Some("ends_at")));

    let (s, b) = problem(
        app.post(
            "/v1/coupons/redeem",
            Some(&app.user("u")),
            &json!({"code": "X"}),
        )
        .await,
    )
    .await;
    assert_problem(s, &b, 400, "idempotency_key_missing");
    let resp = app
        .http
        .post(format!("{}/v1/coupons/redeem", app.base))
        .bearer_auth(app.user("u"))
        .header("Idempotency-Key", "k")
        .json(&json!({"code": 5, "order_id": "o"}))
        .send()
        .await
        .unwrap();
    let (s, b) = problem(resp).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "code");
    // Nothing half-written: no campaign was stored by any of the above.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_not_truncated() {
    let app = TestApp::spawn().await;
    let users: Vec<String> = (0..60_000).map(|i| format!("user-{i:012}")).collect();
    let mut body = base_campaign();
    body["audience"] = json!({"users": users});
    let (s, b) = problem(app.post("/v1/campaigns", Some(&app.admin()), &body).await).await;
    assert_problem(s, &b, 413, "payload_too_large");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn tokens_are_required_checked_and_roles_enforced() {
    let app = TestApp::spawn().await;
    let (s, b) = problem(app.post("/v1/campaigns", None, &base_campaign()).await).await;
    assert_problem(s, &b, 401, "unauthorized");
    let (s, b) = problem(
        app.post("/v1/campaigns", Some("not-a-jwt"), &base_campaign())
            .await,
    )
    .await;
    assert_problem(s, &b, 401, "unauthorized");
    let other = coupon_testkit::Issuer::generate(&app.issuer.iss, &app.issuer.aud);
    let (s, b) = problem(
        app.post("/v1/campaigns", Some(&other.admin()), &base_campaign())
            .await,
    )
    .await;
    assert_problem(s, &b, 401, "unauthorized");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = app.issuer.token_expiring_at("admin", "admin", now - 60);
    let (s, b) = problem(
        app.post("/v1/campaigns", Some(&expired), &base_campaign())
            .await,
    )
    .await;
    assert_problem(s, &b, 401, "unauthorized");
    let (s, b) = problem(
        app.post("/v1/campaigns", Some(&app.user("u1")), &base_campaign())
            .await,
    )
    .await;
    assert_problem(s, &b, 403, "forbidden");
}

#[tokio::test]
async fn unknown_and_malformed_codes_are_unknown() {
    let app = TestApp::spawn().await;
    for code in ["NOSUCHCODE", "BAD!CODE", "", "LC23456789ABM"] {
        let (s, b, _) = app.redeem("u", &format!("k{code}"), code, "o").await;
        assert_problem(s, &b, 404, "unknown_code");
    }
    let v = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u")),
            &json!({"code": "NOPE"}),
        )
        .await;
    let (s, b) = problem(v).await;
    assert_problem(s, &b, 404, "unknown_code");
}

#[tokio::test]
async fn missing_campaigns_redemptions_and_jobs_are_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    for path in [
        "/v1/campaigns/cmp_nope",
        "/v1/jobs/job_nope",
        "/v1/redemptions/red_nope",
    ] {
        let (s, b) = problem(app.get(path, Some(&admin)).await).await;
        assert_problem(s, &b, 404, "not_found");
    }
    let well_formed = coupon_core::CampaignId::random(
        coupon_core::Slot::new(3).unwrap(),
        &mut rand::thread_rng(),
    );
    let (s, b) = problem(
        app.get(&format!("/v1/campaigns/{well_formed}"), Some(&admin))
            .await,
    )
    .await;
    assert_problem(s, &b, 404, "not_found");
}

#[tokio::test]
async fn campaign_windows_pause_and_audience_gate_redemption() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "LATER", "total_limit": 5,
        "starts_at": "2098-01-01T00:00:00Z"}))
        .await;
    let (s, b, _) = app.redeem("u", "k1", "LATER", "o").await;
    assert_problem(s, &b, 410, "not_started");
    app.campaign(json!({"kind": "shared", "code": "OVER", "total_limit": 5,
        "starts_at": "2019-01-01T00:00:00Z", "ends_at": "2020-01-01T00:00:00Z"}))
        .await;
    let (s, b, _) = app.redeem("u", "k2", "OVER", "o").await;
    assert_problem(s, &b, 410, "expired");
    let v = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u")),
            &json!({"code": "OVER"}),
        )
        .await;
    let (s, b) = problem(v).await;
    assert_problem(s, &b, 410, "expired");

    let c = app
        .campaign(json!({"kind": "shared", "code": "PAUSEME", "total_limit": 5}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let paused: Value = app
        .post(
            &format!("/v1/campaigns/{id}/pause"),
            Some(&app.admin()),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["status"], "paused");
    let (s, b, _) = app.redeem("u", "k3", "PAUSEME", "o").await;
    assert_problem(s, &b, 410, "paused");
    let resumed: Value = app
        .post(
            &format!("/v1/campaigns/{id}/resume"),
            Some(&app.admin()),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["status"], "active");
    let (s, _, _) = app.redeem("u", "k3", "PAUSEME", "o").await;
    assert_eq!(s, StatusCode::CREATED);

    app.campaign(json!({"kind": "shared", "code": "VIPONLY", "total_limit": 5, "audience": {"users": ["vip"]}})).await;
    let (s, b, _) = app.redeem("pleb", "k4", "VIPONLY", "o").await;
    assert_problem(s, &b, 403, "audience_mismatch");
    let (s, _, _) = app.redeem("vip", "k4", "VIPONLY", "o").await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn exhausted_campaigns_and_refused_releases() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "ONLYONE", "total_limit": 1}))
        .await;
    let (s, r, _) = app.redeem("a", "k", "ONLYONE", "o").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b, _) = app.redeem("b", "k", "ONLYONE", "o").await;
    assert_problem(s, &b, 410, "exhausted");
    let v = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("c")),
            &json!({"code": "ONLYONE"}),
        )
        .await;
    let (s, b) = problem(v).await;
    assert_problem(s, &b, 410, "exhausted");
    let rid = r["redemption_id"].as_str().unwrap();
    let resp = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user("a")),
            &json!({"reason": "refund"}),
        )
        .await;
    let (s, b) = problem(resp).await;
    assert_problem(s, &b, 409, "release_not_allowed");
    let resp = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user("a")),
            &json!({}),
        )
        .await;
    let (s, b) = problem(resp).await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (400, Some("reason")));
}

#[tokio::test]
async fn same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "REUSE", "total_limit": 5}))
        .await;
    let (s, _, _) = app.redeem("u", "key-1", "REUSE", "ord_1").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b, _) = app.redeem("u", "key-1", "REUSE", "ord_2").await;
    assert_problem(s, &b, 422, "idempotency_key_reused");
    // The key is the caller's: another user may use the same string.
    let (s, _, _) = app.redeem("v", "key-1", "REUSE", "ord_2").await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn a_slot_this_region_does_not_own_is_misdirected() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "MOVED", "total_limit": 5}))
        .await;
    sqlx::query("UPDATE slot_ownership SET state = 'frozen' WHERE slot = $1")
        .bind(c["slot"].as_i64().unwrap() as i32)
        .execute(&app.db)
        .await
        .unwrap();
    let (s, b, _) = app.redeem("u", "k", "MOVED", "o").await;
    assert_problem(s, &b, 421, "misdirected");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        0
    );
}

#[tokio::test]
async fn a_user_over_the_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.burst.user_rate = 0.5;
        c.burst.user_burst = 2;
    })
    .await;
    app.campaign(json!({"kind": "shared", "code": "SLOWDOWN", "total_limit": 5}))
        .await;
    for _ in 0..2 {
        let ok = app
            .post(
                "/v1/coupons/validate",
                Some(&app.user("bot")),
                &json!({"code": "SLOWDOWN"}),
            )
            .await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let resp = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("bot")),
            &json!({"code": "SLOWDOWN"}),
        )
        .await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let (s, b) = problem(resp).await;
    assert_problem(s, &b, 429, "rate_limited");
    // Other users are not affected.
    let other = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("human")),
            &json!({"code": "SLOWDOWN"}),
        )
        .await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_ip_over_its_rate_limit_gets_429() {
    let app = TestApp::spawn_with(|c| {
        c.burst.ip_rate = 0.5;
        c.burst.ip_burst = 3;
    })
    .await;
    for i in 0..3 {
        let r = app
            .post(
                "/v1/coupons/validate",
                Some(&app.user(&format!("u{i}"))),
                &json!({"code": "NOPE"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let r = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u9")),
            &json!({"code": "NOPE"}),
        )
        .await;
    let (s, b) = problem(r).await;
    assert_problem(s, &b, 429, "rate_limited");
}

#[tokio::test]
async fn a_key_still_in_flight_is_refused_on_the_burst_path() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "INFLIGHT", "total_limit": 5}))
        .await;
    let k = coupon_node::burst::keys::Keys::new(c["campaign_id"].as_str().unwrap());
    let mut r = redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Another node claimed under this key and has not committed yet.
    let _: () = redis::cmd("SET")
        .arg(k.inflight("u1", "busy-key"))
        .arg("claim")
        .arg("PX")
        .arg(5000)
        .query_async(&mut r)
        .await
        .unwrap();
    let (s, b, _) = app.redeem("u1", "busy-key", "INFLIGHT", "o").await;
    assert_problem(s, &b, 409, "idempotency_in_flight");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        0
    );
}

#[tokio::test]
async fn a_key_still_in_flight_is_refused_on_the_postgres_path() {
    let app = TestApp::spawn_with(|c| {
        c.burst.claim_engine = coupon_node::config::ClaimEngineKind::Postgres
    })
    .await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "PGFLIGHT", "total_limit": 5}))
        .await;
    // Hold the caller's key lock the way an unfinished redeem transaction does.
    let key = coupon_node::domain::idempotency::IdempotencyKey::parse("busy-key").unwrap();
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key.lock_key(c["campaign_id"].as_str().unwrap(), "u1"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let (s, b, _) = app.redeem("u1", "busy-key", "PGFLIGHT", "o").await;
    assert_problem(s, &b, 409, "idempotency_in_flight");
    tx.rollback().await.unwrap();
    let (s, _, _) = app.redeem("u1", "busy-key", "PGFLIGHT", "o").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1
    );
}

#[tokio::test]
async fn a_client_cannot_dodge_the_ip_limit_with_its_own_forwarded_for() {
    let app = TestApp::spawn_with(|c| {
        c.burst.ip_rate = 0.5;
        c.burst.ip_burst = 2;
    })
    .await;
    let mut last = StatusCode::OK;
    for i in 0..3 {
        let r = app
            .http
            .post(format!("{}/v1/coupons/validate", app.base))
            .bearer_auth(app.user(&format!("u{i}")))
            .header("X-Forwarded-For", format!("10.0.0.{i}"))
            .json(&json!({"code": "NOPE"}))
            .send()
            .await
            .unwrap();
        last = r.status();
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "spoofed hops must not reset the limit"
    );
}

#[tokio::test]
async fn a_home_region_that_contradicts_the_vanity_code_names_the_codes_region() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "x", "kind": "shared", "code": "ELSEWHERE", "total_limit": 5,
        "discount": {"type": "free_shipping"}, "per_user_limit": 1,
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
        "home_region": "eu",
    });
    let (s, b) = problem(app.post("/v1/campaigns", Some(&app.admin()), &body).await).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(b["field"], "home_region");
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("belongs to slot") && detail.contains("`us`"),
        "{detail}"
    );
}
