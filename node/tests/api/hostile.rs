//! Hostile input against a node: every request below was once accepted or
//! answered 500; each must now be refused with 4xx problem+json naming what
//! is wrong, with nothing written.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn problem(resp: reqwest::Response) -> (StatusCode, Value) {
    let s = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let b: Value = resp.json().await.unwrap_or(Value::Null);
    if !s.is_success() {
        assert_eq!(ct, "application/problem+json", "{s} {b}");
    }
    (s, b)
}

#[track_caller]
fn assert_invalid(s: StatusCode, b: &Value, field: &str) {
    assert_problem(s, b, 400, "invalid_request");
    assert_eq!(b["field"], field, "{b}");
}

fn campaign_body(over: Value) -> Value {
    let mut body = json!({
        "name": "Hostile",
        "kind": "shared",
        "code": "HOSTILE",
        "total_limit": 10,
        "discount": {"type": "amount", "amount_minor": 1000, "currency": "USD"},
        "per_user_limit": 1,
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
    });
    for (k, v) in over.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> reqwest::Response {
    app.http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "hostile-key")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// A POST of `body` as sent, answered as a problem.
async fn post_raw(app: &TestApp, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
    problem(raw(app, Method::POST, path, token, body).await).await
}

async fn campaigns(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn control_characters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    for (over, field) in [
        (json!({"name": "Black\u{0}Friday"}), "name"),
        (json!({"name": "Black\u{202E}Friday"}), "name"),
        (json!({"name": "Black\u{7}Friday"}), "name"),
        (
            json!({"audience": {"users": ["u1", "u\u{0}2"]}}),
            "audience.users[1]",
        ),
        (
            json!({"audience": {"users": ["u1", ""]}}),
            "audience.users[1]",
        ),
        (
            json!({"audience": {"users": ["u1", "u1"]}}),
            "audience.users[1]",
        ),
        (json!({"home_region": "u\u{0}s"}), "home_region"),
    ] {
        let (s, b) = problem(
            app.post("/v1/campaigns", Some(&admin), &campaign_body(over.clone()))
                .await,
        )
        .await;
        assert_invalid(s, &b, field);
    }
    assert_eq!(campaigns(&app).await, 0, "nothing half-written");
    let c = app
        .campaign(
            json!({"kind": "shared", "code": "CTRL", "total_limit": 5, "release_on_refund": true}),
        )
        .await;
    let (s, b, _) = app.redeem("u1", "k1", "CTRL", "ord\u{0}1").await;
    assert_invalid(s, &b, "order_id");
    let (s, b, _) = app.redeem("u1", "k2", "CT\u{0}RL", "o").await;
    assert_invalid(s, &b, "code");
    let (s, b) = problem(
        app.post(
            "/v1/coupons/validate",
            Some(&app.user("u1")),
            &json!({"code": "CT\u{0}RL"}),
        )
        .await,
    )
    .await;
    assert_invalid(s, &b, "code");
    let (s, r, _) = app.redeem("u1", "k3", "CTRL", "o").await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["redemption_id"].as_str().unwrap();
    let (s, b) = problem(
        app.post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&admin),
            &json!({"reason": "re\u{0}fund"}),
        )
        .await,
    )
    .await;
    assert_invalid(s, &b, "reason");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1
    );
    // Unique codes: a NUL or a duplicate among intended users is a 400, not
    // a job that fails with a raw Postgres error.
    let u = app.campaign(json!({"kind": "unique", "code": null})).await;
    let path = format!("/v1/campaigns/{}/codes", u["campaign_id"].as_str().unwrap());
    for (users, field) in [
        (json!(["a", "b\u{0}"]), "intended_users[1]"),
        (json!(["a", "b", "a"]), "intended_users[2]"),
    ] {
        let (s, b) = problem(
            app.post(&path, Some(&admin), &json!({"intended_users": users}))
                .await,
        )
        .await;
        assert_invalid(s, &b, field);
    }
}

#[tokio::test]
async fn the_attempt_log_keeps_every_attempt_even_one_with_a_nul() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "TRAIL", "total_limit": 5}))
        .await;
    // A bot's attempts, one of them with a NUL in the code: none may be lost.
    let _ = app.redeem("bot", "k1", "NOSUCHCODE", "o").await;
    let _ = app.redeem("bot", "k2", "TR\u{0}AIL", "o").await;
    // A hop the client wrote itself is not its address (only a router's is).
    let spoofed = app
        .http
        .post(format!("{}/v1/coupons/redeem", app.base))
        .bearer_auth(app.user("bot"))
        .header("Idempotency-Key", "k3")
        .header("X-Forwarded-For", "10.9.9.9")
        .json(&json!({"code": "TRAIL", "order_id": "o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::CREATED);
    let mut logged = 0i64;
    for _ in 0..50 {
        logged =
            sqlx::query_scalar("SELECT count(*) FROM redemption_attempts WHERE user_id = 'bot'")
                .fetch_one(&app.db)
                .await
                .unwrap();
        if logged == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged, 3, "attempts lost from the log");
    // Each with the address it came from, the fraud signal a brute-force
    // review starts from.
    let ips: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT ip FROM redemption_attempts WHERE user_id = 'bot' ORDER BY attempt_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(ips, vec![Some("127.0.0.1".to_owned()); 3]);
}

#[tokio::test]
async fn a_window_shorter_than_a_microsecond_is_refused() {
    let app = TestApp::spawn().await;
    let body = campaign_body(json!({
        "starts_at": "2030-01-01T00:00:00.0000001Z",
        "ends_at": "2030-01-01T00:00:00.0000009Z",
    }));
    let (s, b) = problem(app.post("/v1/campaigns", Some(&app.admin()), &body).await).await;
    assert_invalid(s, &b, "ends_at");
    assert_eq!(campaigns(&app).await, 0);
}

#[tokio::test]
async fn text_after_the_json_document_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let body = campaign_body(json!({})).to_string() + "}]x";
    let (s, b) = post_raw(&app, "/v1/campaigns", &admin, &body).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(campaigns(&app).await, 0);
    let c = app
        .campaign(json!({"kind": "shared", "code": "TRAILING", "total_limit": 5, "release_on_refund": true}))
        .await;
    let user = app.user("u1");
    let (s, b) = post_raw(
        &app,
        "/v1/coupons/validate",
        &user,
        r#"{"code":"TRAILING"}}"#,
    )
    .await;
    assert_problem(s, &b, 400, "invalid_request");
    let (s, b) = post_raw(
        &app,
        "/v1/coupons/redeem",
        &user,
        r#"{"code":"TRAILING","order_id":"o"} x"#,
    )
    .await;
    assert_problem(s, &b, 400, "invalid_request");
    let (s, r, _) = app.redeem("u1", "k", "TRAILING", "o").await;
    assert_eq!(s, StatusCode::CREATED);
    let path = format!(
        "/v1/redemptions/{}/release",
        r["redemption_id"].as_str().unwrap()
    );
    let (s, b) = post_raw(&app, &path, &admin, r#"{"reason":"refund"}}}]]x"#).await;
    assert_problem(s, &b, 400, "invalid_request");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1,
        "not released"
    );
    let u = app.campaign(json!({"kind": "pool", "code": null})).await;
    let path = format!("/v1/campaigns/{}/codes", u["campaign_id"].as_str().unwrap());
    let (s, b) = post_raw(&app, &path, &admin, r#"{"count":5} {"count":5}"#).await;
    assert_problem(s, &b, 400, "invalid_request");
}

#[tokio::test]
async fn discounts_refuse_unknown_fields_unknown_currencies_and_absurd_amounts() {
    let app = TestApp::spawn().await;
    for discount in [
        json!({"type": "free_shipping", "percent": 500, "junk": {}}),
        json!({"type": "percent", "percent": 10, "currency": "USD"}),
        json!({"type": "amount", "amount_minor": 100, "currency": "ABC"}),
        json!({"type": "amount", "amount_minor": i64::MAX, "currency": "USD"}),
    ] {
        let body = campaign_body(json!({"discount": discount.clone()}));
        let (s, b) = problem(app.post("/v1/campaigns", Some(&app.admin()), &body).await).await;
        assert_problem(s, &b, 400, "invalid_request");
        assert!(
            b["field"].as_str().unwrap_or("").starts_with("discount"),
            "{discount}: {b}"
        );
    }
    assert_eq!(campaigns(&app).await, 0);
}

#[tokio::test]
async fn hostile_tokens_are_refused_without_library_text() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "TOKENS", "total_limit": 5}))
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let long = "u".repeat(10 * 1024);
    for token in [
        app.issuer.token_with("u1", json!({"nbf": now + 3600})),
        app.issuer.token_with("", json!({})),
        app.issuer.token_with(&long, json!({})),
        app.issuer.token_with("u\u{0}1", json!({})),
        app.issuer.token_expiring_at("u1", "user", now - 3600),
    ] {
        let resp = app
            .http
            .post(format!("{}/v1/coupons/redeem", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "k")
            .json(&json!({"code": "TOKENS", "order_id": "o"}))
            .send()
            .await
            .unwrap();
        let (s, b) = problem(resp).await;
        assert_problem(s, &b, 401, "unauthorized");
        let detail = b["detail"].as_str().unwrap();
        for leak in ["Signature", "Immature", "InvalidToken", "Error", "Kind"] {
            assert!(!detail.contains(leak), "401 leaks library text: {detail}");
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_wrong_method_is_405_problem_json_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (Method::GET, "/v1/coupons/redeem", "POST"),
        (Method::DELETE, "/v1/campaigns", "POST"),
        (Method::PUT, "/v1/events", "GET"),
    ] {
        let resp = raw(&app, method.clone(), path, &app.admin(), "{}").await;
        let allowed = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (s, b) = problem(resp).await;
        assert_problem(s, &b, 405, "method_not_allowed");
        assert!(
            allowed.contains(allow),
            "{method} {path}: Allow = {allowed:?}"
        );
    }
}

#[tokio::test]
async fn callers_are_authorized_before_their_input_is_validated() {
    let app = TestApp::spawn().await;
    // A user creating a campaign with a broken body: 403, not 400.
    let (s, b) = problem(
        app.post(
            "/v1/campaigns",
            Some(&app.user("u1")),
            &json!({"name": "x\u{0}", "kind": 7}),
        )
        .await,
    )
    .await;
    assert_problem(s, &b, 403, "forbidden");
    // A redeem with no Idempotency-Key and a malformed code: 400 for the key.
    let resp = app
        .http
        .post(format!("{}/v1/coupons/redeem", app.base))
        .bearer_auth(app.user("u1"))
        .json(&json!({"code": "!!", "order_id": "o"}))
        .send()
        .await
        .unwrap();
    let (s, b) = problem(resp).await;
    assert_problem(s, &b, 400, "idempotency_key_missing");
}
