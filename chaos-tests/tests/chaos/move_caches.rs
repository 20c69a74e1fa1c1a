//! Guards what a node answers after a slot moved (docs/architecture.md §7,
//! §3.4): the new owner's caches know the slot's data and the old owner
//! answers nothing about it. A pool campaign with generated codes and an
//! exhausted shared campaign live in `us`; both slots move to `eu`. Then:
//! an unused pool code redeems at `eu` (its Bloom filter learned the copied
//! codes: not 404 `unknown_code`); the old owner's node, asked directly
//! (as a client or router with a stale map would), refuses validate, redeem
//! and the reads of the campaign and of a redemption with 421 naming the
//! owner — never `exhausted` from its Redis or a row from its Postgres; the
//! old owner's Redis holds no key of either campaign; `eu` answers
//! `exhausted` for the shared code from the copied state.

use super::helpers::{check, eventually, get_json, US_CODE, US_SLOT};
use coupon_chaos_tests::moves::move_slot;
use coupon_chaos_tests::region::wait_served;
use coupon_chaos_tests::workload::{burst, create_campaign, redeem, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_core::CampaignId;
use serde_json::{json, Value};
use std::time::Duration;

async fn post(h: &Harness, base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("k-{}", rand::random::<u64>()))
        .json(&body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(h: &Harness, base: &str, path: &str, token: &str) -> (u16, Value) {
    let r = h
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Keys of `campaign` in a region's Redis.
async fn redis_keys(h: &Harness, region: &str, campaign: &str) -> Vec<String> {
    let client = redis::Client::open(h.cluster.region(region).redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg(format!("c:{{{campaign}}}*"))
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_move_the_new_owner_knows_the_slot_and_the_old_owner_answers_nothing() {
    let h = Harness::start("move-caches").await;
    let admin = h.issuer.admin();
    let shared = shared_campaign(&h, "us", US_CODE, 2).await;
    let sid = shared["campaign_id"].as_str().unwrap().to_owned();
    let pool = create_campaign(
        &h,
        "us",
        json!({"name": "moved pool", "kind": "pool", "per_user_limit": 1,
            "discount": {"type": "percent", "percent": 10},
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let pid = pool["campaign_id"].as_str().unwrap().to_owned();
    let pool_slot = CampaignId::parse(&pid).unwrap().slot().get();
    let (s, job) = post(
        &h,
        &h.router("us"),
        &format!("/v1/campaigns/{pid}/codes"),
        &admin,
        json!({"count": 50}),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let job_path = format!("/v1/jobs/{}", job["job_id"].as_str().unwrap());
    let router = h.router("us");
    eventually(Duration::from_secs(20), "code job done", || {
        let (h, p, a, r) = (&h, job_path.clone(), admin.clone(), router.clone());
        async move { get(h, &r, &p, &a).await.1["state"] == "done" }
    })
    .await;
    let (_, export) = get(
        &h,
        &h.router("us"),
        &format!("/v1/campaigns/{pid}/codes?limit=100"),
        &admin,
    )
    .await;
    let codes: Vec<String> = export["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 50);
    // Burst state in us's Redis for both campaigns: the shared one exhausted.
    let plan: Vec<(String, String, String)> = (0..3)
        .map(|i| ("us".to_owned(), format!("early-{i}"), US_CODE.to_owned()))
        .chain((0..3).map(|i| ("us".to_owned(), format!("pool-{i}"), codes[i].clone())))
        .collect();
    let mut records: Vec<Record> = burst(&h, plan, 6).await;
    let won = records.iter().filter(|r| r.status == 201).count();
    assert_eq!(won, 2 + 3, "{records:?}");
    let rid = records
        .iter()
        .find_map(|r| r.redemption_id.clone())
        .expect("a redemption");
    assert!(
        !redis_keys(&h, "us", &sid).await.is_empty(),
        "us's Redis held the shared campaign"
    );

    let m1 = move_slot(&h, US_SLOT, "eu")
        .await
        .expect("move the shared slot");
    let mut moves = vec![m1];
    if pool_slot != US_SLOT {
        moves.push(
            move_slot(&h, pool_slot, "eu")
                .await
                .expect("move the pool slot"),
        );
    }

    // The new owner: an unused pool code redeems (the Bloom filter knows it)
    // once the new owner has warmed the slot.
    wait_served(&h, &["ap", "us"], &codes[10], Duration::from_secs(20)).await;
    wait_served(&h, &["us"], US_CODE, Duration::from_secs(20)).await;
    let token = h.issuer.user("after-move");
    let r = redeem(
        &h.http,
        &h.router("ap"),
        "ap",
        &token,
        "after-move",
        &codes[10],
    )
    .await;
    assert_eq!(
        (r.status, r.region.as_deref()),
        (201, Some("eu")),
        "a moved pool code (seed {}): {r:?}",
        h.seed
    );
    records.push(r);
    let late = h.issuer.user("late");
    let r = redeem(&h.http, &h.router("us"), "us", &late, "late", US_CODE).await;
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (410, Some("exhausted")),
        "{r:?}"
    );
    records.push(r);

    // The old owner, asked directly, answers nothing about the slots.
    let us = h.node("us");
    let (s, b) = post(
        &h,
        &us,
        "/v1/coupons/validate",
        &late,
        json!({"code": US_CODE}),
    )
    .await;
    assert_eq!(
        (s, b["owner"].as_str()),
        (421, Some("eu")),
        "validate at the old owner: {b}"
    );
    let (s, b) = post(
        &h,
        &us,
        "/v1/coupons/redeem",
        &late,
        json!({"code": US_CODE, "order_id": "o-1"}),
    )
    .await;
    assert_eq!(s, 421, "redeem at the old owner: {b}");
    let (s, b) = post(
        &h,
        &us,
        "/v1/coupons/validate",
        &late,
        json!({"code": codes[20]}),
    )
    .await;
    assert_eq!(s, 421, "a pool code at the old owner: {b}");
    let (s, b) = get(&h, &us, &format!("/v1/campaigns/{sid}"), &admin).await;
    assert_eq!(s, 421, "campaign read at the old owner: {b}");
    let (s, b) = get(&h, &us, &format!("/v1/redemptions/{rid}"), &admin).await;
    assert_eq!(s, 421, "redemption read at the old owner: {b}");
    let (s, b) = post(
        &h,
        &us,
        &format!("/v1/campaigns/{pid}/pause"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(s, 421, "pause at the old owner: {b}");
    // …and its Redis forgot both campaigns (they rebuild if the slot returns).
    for id in [&sid, &pid] {
        let left = redis_keys(&h, "us", id).await;
        assert!(left.is_empty(), "us's Redis still holds {id}: {left:?}");
    }
    let (s, _) = get_json(&h.http, &format!("{}/v1/campaigns/{sid}", h.router("ap"))).await;
    assert_ne!(s, 0);
    let summary = check(&h, &records, &moves).await;
    assert_eq!(summary.active.values().sum::<i64>(), 2 + 3 + 1);
}
