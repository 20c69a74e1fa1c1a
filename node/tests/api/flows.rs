//! End-to-end flows of docs/api.md: create → validate → redeem → replay → release,
//! for all three code patterns.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn shared_code_validates_redeems_replays_and_releases() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "SAVE20", "total_limit": 10, "release_on_refund": true}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    assert!(id.starts_with("cmp_"));
    assert_eq!(c["remaining"], 10);
    assert_eq!(c["home_region"], "us");
    assert_eq!(c["status"], "active");

    let v = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u1")),
            &json!({"code": "save-20"}),
        )
        .await;
    assert_eq!(v.status(), StatusCode::OK);
    assert_eq!(v.headers()["coupon-region"], "us");
    assert!(v.headers().contains_key("request-id"));
    let v: Value = v.json().await.unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["remaining"], 10);
    assert_eq!(v["code"], "SAVE20");

    let (s, r, h) = app.redeem("u1", "k1", "save 20", "ord_1").await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert!(h.get("idempotent-replayed").is_none());
    assert_eq!(r["user_id"], "u1");
    assert_eq!(r["order_id"], "ord_1");
    assert_eq!(
        r["discount"],
        json!({"type": "amount", "amount_minor": 1000, "currency": "USD"})
    );
    assert!(r["redeemed_at"].as_str().unwrap().ends_with('Z'));

    let (s2, r2, h2) = app.redeem("u1", "k1", "save 20", "ord_1").await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(r2, r);

    let rid = r["redemption_id"].as_str().unwrap();
    let got: Value = app
        .get(&format!("/v1/redemptions/{rid}"), Some(&app.user("u1")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["redemption_id"], rid);

    let rel = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user("u1")),
            &json!({"reason": "refund"}),
        )
        .await;
    assert_eq!(rel.status(), StatusCode::OK);
    let rel: Value = rel.json().await.unwrap();
    assert!(rel["released_at"].is_string());
    let again: Value = app
        .post(
            &format!("/v1/redemptions/{rid}/release"),
            Some(&app.user("u1")),
            &json!({"reason": "refund"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, rel, "a second release answers the same");

    // The released use is free again.
    let (s3, _, _) = app.redeem("u1", "k2", "SAVE20", "ord_2").await;
    assert_eq!(s3, StatusCode::CREATED);
    let view: Value = app
        .get(&format!("/v1/campaigns/{id}"), Some(&app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["redeemed"], 1);
    assert_eq!(view["remaining"], 9);
}

#[tokio::test]
async fn discount_snapshot_is_frozen_in_the_redemption_row() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(
            json!({"kind": "shared", "code": "FROZEN", "total_limit": null,
        "discount": {"type": "percent", "percent": 20}}),
        )
        .await;
    let (s, r, _) = app.redeem("u1", "k", "FROZEN", "o").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(r["discount"], json!({"type": "percent", "percent": 20}));
    // Marketing edits the campaign afterwards (directly, there is no edit API).
    sqlx::query("UPDATE campaigns SET discount = '{\"type\":\"percent\",\"percent\":50}' WHERE campaign_id = $1")
        .bind(c["campaign_id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let stored: Value =
        sqlx::query_scalar("SELECT discount FROM redemptions WHERE redemption_id = $1")
            .bind(r["redemption_id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, json!({"type": "percent", "percent": 20}));
}

#[tokio::test]
async fn pool_codes_are_generated_exported_and_each_redeemed_once() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "pool", "total_limit": null, "per_user_limit": 5}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let job = app.generate(id, json!({"count": 25})).await;
    assert_eq!(job["done"], 25);
    assert_eq!(job["total"], 25);
    assert_eq!(job["report"]["postgres"], 25);
    let codes = app.export(id).await;
    assert_eq!(codes.len(), 25);
    let first = codes[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(codes[0]["state"], "unused");
    // The code alone routes: its first two symbols are the campaign's slot.
    let parsed = coupon_core::Code::parse(&first).unwrap();
    assert_eq!(parsed.slot().get() as i64, c["slot"].as_i64().unwrap());

    let (s, r, _) = app.redeem("u1", "k1", &first.to_lowercase(), "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, body, _) = app.redeem("u2", "k1", &first, "o2").await;
    assert_problem(s, &body, 409, "already_redeemed");
    let codes = app.export(id).await;
    assert_eq!(codes.iter().filter(|c| c["state"] == "used").count(), 1);
}

#[tokio::test]
async fn pool_claim_code_hands_out_distinct_codes_until_exhausted() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "pool", "code": "GRABONE"}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    app.generate(id, json!({"count": 3})).await;
    let mut got = std::collections::HashSet::new();
    for u in ["a", "b", "c"] {
        let (s, r, _) = app.redeem(u, "k", "GRABONE", "o").await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        assert_eq!(r["code"], "GRABONE");
        got.insert(r["assigned_code"].as_str().unwrap().to_owned());
    }
    assert_eq!(got.len(), 3);
    let (s, body, _) = app.redeem("d", "k", "GRABONE", "o").await;
    assert_problem(s, &body, 410, "exhausted");
}

#[tokio::test]
async fn unique_codes_belong_to_their_intended_user() {
    let app = TestApp::spawn().await;
    let c = app.campaign(json!({"kind": "unique"})).await;
    let id = c["campaign_id"].as_str().unwrap();
    let job = app
        .generate(id, json!({"intended_users": ["alice", "bob"]}))
        .await;
    assert_eq!(job["report"]["postgres"], 2);
    let codes = app.export(id).await;
    let alice = codes
        .iter()
        .find(|c| c["intended_user"] == "alice")
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, body, _) = app.redeem("bob", "k", &alice, "o").await;
    assert_problem(s, &body, 403, "audience_mismatch");
    let (s, _, _) = app.redeem("alice", "k", &alice, "o").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body, _) = app.redeem("alice", "k2", &alice, "o2").await;
    assert_problem(s, &body, 409, "already_redeemed");
}

#[tokio::test]
async fn events_are_appended_with_deterministic_ids() {
    let app = TestApp::spawn().await;
    app.campaign(
        json!({"kind": "shared", "code": "EVENTS", "total_limit": 5, "release_on_refund": true}),
    )
    .await;
    let (_, r, _) = app.redeem("u1", "k", "EVENTS", "o").await;
    let rid = r["redemption_id"].as_str().unwrap();
    app.post(
        &format!("/v1/redemptions/{rid}/release"),
        Some(&app.admin()),
        &json!({"reason": "refund"}),
    )
    .await;
    // The feed holds events back for a settle time; wait it out.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let page: Value = app
        .get("/v1/events?after=0&limit=10", Some(&app.admin()))
        .await
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            format!("{rid}:coupon.redeemed"),
            format!("{rid}:coupon.released")
        ]
    );
    assert_eq!(events[0]["type"], "coupon.redeemed");
    assert_eq!(events[0]["data"]["redemption_id"], rid);
    let next = page["next"].as_str().unwrap();
    let more: Value = app
        .get(&format!("/v1/events?after={next}"), Some(&app.admin()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(more["events"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn ops_endpoints_answer_and_openapi_lists_the_contract() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/livez", None).await.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    app.redeem("u", "k", "NOSUCHCODE", "o").await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("coupon_http_requests_total"), "{metrics}");
    assert!(metrics.contains("reason=\"unknown_code\""), "{metrics}");
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    for path in [
        "/v1/campaigns",
        "/v1/coupons/redeem",
        "/v1/coupons/validate",
        "/v1/jobs/{job_id}",
        "/v1/redemptions/{redemption_id}/release",
        "/v1/events",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
}

#[tokio::test]
async fn request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(format!("{}/livez", app.base))
        .header("Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["request-id"], "abc-123");
    assert_eq!(r.headers()["coupon-region"], "us");
}

#[tokio::test]
async fn validate_reads_remaining_from_redis() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "FROMREDIS", "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let mut r = redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Take three seats out of Redis behind the node's back: validate must see it.
    let _: i64 = redis::cmd("INCRBY")
        .arg(coupon_node::burst::keys::Keys::new(id).next())
        .arg(3)
        .query_async(&mut r)
        .await
        .unwrap();
    let v: Value = app
        .post(
            "/v1/coupons/validate",
            Some(&app.user("u")),
            &json!({"code": "FROMREDIS"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["remaining"], 7);
}

#[tokio::test]
async fn never_issued_codes_are_refused_by_the_bloom_filter_once_it_is_complete() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "pool", "per_user_limit": 3}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let job = app.generate(id, json!({"count": 50})).await;
    assert_eq!(job["report"]["bloom"], 50, "{job}");
    let slot = coupon_core::Slot::new(c["slot"].as_u64().unwrap() as u16).unwrap();
    let mut rejected = false;
    for i in 0..40 {
        let bogus = coupon_core::GeneratedCode::random(slot, &mut rand::thread_rng());
        let (s, b, _) = app
            .redeem("prober", &format!("k{i}"), bogus.as_str(), "o")
            .await;
        assert_problem(s, &b, 404, "unknown_code");
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        if metrics.contains("coupon_bloom_rejects_total") {
            rejected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(rejected, "the filter never became complete");
    // No false negatives: issued codes still redeem.
    let codes = app.export(id).await;
    for (i, code) in codes.iter().take(3).enumerate() {
        let (s, b, _) = app
            .redeem(
                "buyer",
                &format!("b{i}"),
                code["code"].as_str().unwrap(),
                "o",
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
}

/// Refuses never-issued codes at `node` until its filter is complete (a
/// bogus code counted as a Bloom reject), within a few seconds.
async fn wait_bloom_complete(node: &TestApp, slot: coupon_core::Slot) {
    for i in 0..100 {
        let before = node.metric("coupon_bloom_rejects_total").await;
        let bogus = coupon_core::GeneratedCode::random(slot, &mut rand::thread_rng());
        let (s, b, _) = node
            .redeem("prober", &format!("p{i}"), bogus.as_str(), "o")
            .await;
        assert_problem(s, &b, 404, "unknown_code");
        if node.metric("coupon_bloom_rejects_total").await > before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the peer's filter never became complete");
}

/// Two nodes of a region share one database: codes one of them generates
/// reach the other's filter by its incremental load (the codes created
/// since its last load), never as a false "unknown code".
#[tokio::test]
async fn codes_generated_on_one_node_are_known_to_its_peers_filter() {
    let app = TestApp::spawn().await;
    let peer = app.peer().await;
    let c = app
        .campaign(json!({"kind": "pool", "per_user_limit": 1}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let slot = coupon_core::Slot::new(c["slot"].as_u64().unwrap() as u16).unwrap();
    wait_bloom_complete(&peer, slot).await;
    let job = app.generate(id, json!({"count": 2000})).await;
    assert_eq!(job["report"]["bloom"], 2000, "{job}");
    wait_bloom_complete(&peer, slot).await;
    let user = peer.user("checker");
    for code in app.export(id).await {
        let code = code["code"].as_str().unwrap();
        let r = peer
            .post("/v1/coupons/validate", Some(&user), &json!({"code": code}))
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{code} at the peer: {body}");
    }
}
