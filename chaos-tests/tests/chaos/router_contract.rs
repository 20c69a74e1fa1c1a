//! Guards docs/api.md's error contract through a router, as through a node:
//! the router authorizes (through the node) before it validates, answers a
//! wrong method with 405 problem+json and `Allow`, passes `?region=` to a
//! feed that accepts it, explains a `home_region` that contradicts a vanity
//! code, and an Idempotency-Key has the same scope (caller and campaign)
//! whether two campaigns live in one region or in two.

use super::helpers::{get_json, EU_CODE, US_CODE};
use coupon_chaos_tests::workload::shared_campaign;
use coupon_chaos_tests::Harness;
use serde_json::{json, Value};

async fn answer(resp: reqwest::Response) -> (u16, String, Option<String>, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, allow, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_answer_in_the_contracts_order_and_shape() {
    let h = Harness::start("router-contract").await;
    let us = h.router("us");
    let admin = h.issuer.admin();
    let user = h.issuer.user("u1");

    // The feed of another region, through this region's router.
    let (status, body) = get_json(&h.http, &format!("{us}/v1/events?region=eu&limit=5")).await;
    assert_eq!(status, 401, "no token: {body}");
    let resp = h
        .http
        .get(format!("{us}/v1/events?region=eu&limit=5"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, _, _, body) = answer(resp).await;
    assert_eq!(status, 200, "seed {}: {body}", h.seed);

    // A wrong method: 405 problem+json naming what is allowed.
    let resp = h
        .http
        .get(format!("{us}/v1/coupons/redeem"))
        .send()
        .await
        .unwrap();
    let (status, ct, allow, body) = answer(resp).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    assert!(allow.unwrap_or_default().contains("POST"));

    // Authorize before validating: no key and a malformed code → the key.
    let resp = h
        .http
        .post(format!("{us}/v1/coupons/redeem"))
        .bearer_auth(&user)
        .json(&json!({"code": "!!", "order_id": "o"}))
        .send()
        .await
        .unwrap();
    let (status, _, _, body) = answer(resp).await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!("idempotency_key_missing")),
        "{body}"
    );
    // A user creating a campaign with a region nobody has → 403, not 400.
    let resp = h
        .http
        .post(format!("{us}/v1/campaigns"))
        .bearer_auth(&user)
        .json(&json!({"name": "x", "home_region": "mars"}))
        .send()
        .await
        .unwrap();
    let (status, _, _, body) = answer(resp).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    // A user reading an id that cannot be one → 403, not 404.
    let resp = h
        .http
        .get(format!("{us}/v1/campaigns/not-an-id"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    let (status, _, _, body) = answer(resp).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    // An admin gets the validation answer, naming the field.
    let resp = h
        .http
        .post(format!("{us}/v1/campaigns"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "x", "kind": "shared", "code": EU_CODE, "total_limit": 5,
            "discount": {"type": "free_shipping"}, "per_user_limit": 1,
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
            "home_region": "us",
        }))
        .send()
        .await
        .unwrap();
    let (status, _, _, body) = answer(resp).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "home_region");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("`eu`") && !detail.contains("through a router"),
        "the answer must say which region the code belongs to: {detail}"
    );

    // One key, two campaigns in two regions: two scopes, as in one region.
    shared_campaign(&h, "us", US_CODE, 5).await;
    shared_campaign(&h, "us", EU_CODE, 5).await;
    for (code, region) in [(US_CODE, "us"), (EU_CODE, "eu")] {
        let resp = h
            .http
            .post(format!("{us}/v1/coupons/redeem"))
            .bearer_auth(&user)
            .header("Idempotency-Key", "one-key")
            .json(&json!({"code": code, "order_id": "o"}))
            .send()
            .await
            .unwrap();
        let served_by = resp
            .headers()
            .get("coupon-region")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (status, _, _, body) = answer(resp).await;
        assert_eq!(status, 201, "{code}: {body}");
        assert_eq!(served_by, region);
    }
}
