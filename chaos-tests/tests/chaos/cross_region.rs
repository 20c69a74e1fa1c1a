//! Guards docs/architecture.md §2 routing: any region's router serves a campaign homed
//! in another region — create, validate, redeem, replay, release — and every
//! answer names the region whose node answered (`Coupon-Region`); malformed
//! codes and oversized bodies are answered by the router without forwarding.

use super::helpers::{check, EU_CODE};
use coupon_chaos_tests::workload::redeem;
use coupon_chaos_tests::Harness;
use serde_json::{json, Value};

fn region(r: &reqwest::Response) -> String {
    r.headers()
        .get("coupon-region")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_homed_in_eu_is_created_validated_redeemed_and_released_through_us_and_ap() {
    let h = Harness::start("cross-region").await;
    let (us, ap) = (h.router("us"), h.router("ap"));
    let admin = h.issuer.admin();
    let spec = json!({"name": "eu launch", "kind": "shared", "code": EU_CODE,
        "discount": {"type": "amount", "amount_minor": 1000, "currency": "EUR"},
        "total_limit": 10, "per_user_limit": 1, "release_on_refund": true, "home_region": "eu",
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"});
    let r = h
        .http
        .post(format!("{us}/v1/campaigns"))
        .bearer_auth(&admin)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (201, "eu".into()));
    let campaign: Value = r.json().await.unwrap();
    assert_eq!(campaign["home_region"], "eu");
    let cid = campaign["campaign_id"].as_str().unwrap().to_owned();

    let mut records = Vec::new();
    for (via, base) in [("us", &us), ("ap", &ap)] {
        let user = format!("shopper-{via}");
        let token = h.issuer.user(&user);
        let r = h
            .http
            .post(format!("{base}/v1/coupons/validate"))
            .bearer_auth(&token)
            .json(&json!({"code": "blackfri-100"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), region(&r)),
            (200, "eu".into()),
            "validate via {via}"
        );
        let rec = redeem(&h.http, base, via, &token, &user, EU_CODE).await;
        assert_eq!(
            (rec.status, rec.region.as_deref()),
            (201, Some("eu")),
            "redeem via {via}: {rec:?}"
        );
        let replay = redeem(&h.http, base, via, &token, &user, EU_CODE).await;
        assert_eq!(
            (replay.status, &replay.redemption_id),
            (200, &rec.redemption_id),
            "replay via {via}"
        );
        records.push(rec);
    }
    // A redemption id routes its release to eu, from any router.
    let rid = records[0].redemption_id.clone().unwrap();
    let r = h
        .http
        .post(format!("{ap}/v1/redemptions/{rid}/release"))
        .bearer_auth(h.issuer.user("shopper-us"))
        .json(&json!({"reason": "refund"}))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (200, "eu".into()));
    let released: Value = r.json().await.unwrap();
    assert!(released["released_at"].is_string(), "{released}");
    let r = h
        .http
        .get(format!("{ap}/v1/campaigns/{cid}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (200, "eu".into()));
    let c: Value = r.json().await.unwrap();
    assert_eq!(
        c["redeemed"], 1,
        "one active redemption after the release: {c}"
    );

    // Without a vanity code, home_region picks the node; its id then routes there.
    let mut pool = spec.clone();
    for k in ["code", "total_limit"] {
        pool.as_object_mut().unwrap().remove(k);
    }
    pool["kind"] = json!("pool");
    let r = h
        .http
        .post(format!("{ap}/v1/campaigns"))
        .bearer_auth(&admin)
        .json(&pool)
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (201, "eu".into()));
    let pid = r.json::<Value>().await.unwrap()["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .http
        .get(format!("{us}/v1/campaigns/{pid}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (200, "eu".into()));

    // Answered by the router itself: a malformed code, a bad id, a huge body.
    let token = h.issuer.user("u-x");
    let r = h
        .http
        .post(format!("{us}/v1/coupons/validate"))
        .bearer_auth(&token)
        .json(&json!({"code": "no way!"}))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), region(&r)), (404, "us".into()));
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unknown_code");
    let r = h
        .http
        .get(format!("{us}/v1/redemptions/red_nonsense"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let big = format!("{{\"code\": \"{}\"}}", "A".repeat(2 * 1024 * 1024));
    let r = h
        .http
        .post(format!("{us}/v1/coupons/redeem"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "k")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "payload_too_large"
    );

    let (status, map) = super::helpers::get_json(&h.http, &format!("{us}/v1/cluster/map")).await;
    assert_eq!(status, 200);
    assert_eq!(map["slots"].as_array().map(Vec::len), Some(1024));
    check(&h, &records, &[]).await;
}
