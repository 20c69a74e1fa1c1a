//! Guards the per-code and per-user limits across regions, on the paths the
//! other scenarios do not take: a pool campaign homed in `ap` (codes
//! generated and exported through other routers) whose codes are raced by
//! two users each through different routers (each code used exactly once);
//! a shared `eu` code with `per_user_limit` 2 fired three times at once per
//! user through three routers (exactly two uses each); releases through a
//! router of another region (idempotent) that free the use and the code for
//! the next redemption. The checker judges pool-code reuse, per-user uses
//! and the caps against every region's rows.

use super::helpers::{check, eventually, get_json, tally, EU_CODE};
use coupon_chaos_tests::workload::{create_campaign, redeem_keyed, Record};
use coupon_chaos_tests::Harness;
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;

const ROUTERS: [&str; 3] = ["us", "eu", "ap"];

async fn post(h: &Harness, via: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{}{path}", h.router(via)))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn release(h: &Harness, via: &str, user: &str, id: &str) -> Value {
    let path = format!("/v1/redemptions/{id}/release");
    let token = h.issuer.user(user);
    let (s, first) = post(h, via, &path, &token, json!({"reason": "refund"})).await;
    assert_eq!(s, 200, "release {id} via {via}: {first}");
    assert!(first["released_at"].is_string(), "{first}");
    let (s, again) = post(h, via, &path, &token, json!({"reason": "refund"})).await;
    assert_eq!(
        (s, &again),
        (200, &first),
        "a second release answers the same"
    );
    first
}

/// Fires every (via, user, key, code) at once.
async fn at_once(h: &Harness, plan: Vec<(&str, String, String, String)>) -> Vec<Record> {
    join_all(plan.into_iter().map(|(via, user, key, code)| {
        let (http, router, token) = (h.http.clone(), h.router(via), h.issuer.user(&user));
        async move { redeem_keyed(&http, &router, via, &token, &user, &code, &key).await }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_codes_per_user_limits_and_releases_hold_across_regions() {
    let h = Harness::start("pools-releases").await;
    let admin = h.issuer.admin();
    let pool = create_campaign(
        &h,
        "us",
        json!({
        "name": "chaos pool", "kind": "pool", "per_user_limit": 1, "home_region": "ap",
        "release_on_refund": true, "discount": {"type": "percent", "percent": 10},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let pid = pool["campaign_id"].as_str().unwrap().to_owned();
    assert_eq!(pool["home_region"], "ap");
    let (s, job) = post(
        &h,
        "eu",
        &format!("/v1/campaigns/{pid}/codes"),
        &admin,
        json!({"count": 20}),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let job_url = format!(
        "{}/v1/jobs/{}",
        h.router("us"),
        job["job_id"].as_str().unwrap()
    );
    let http = h.http.clone();
    eventually(Duration::from_secs(20), "code job done", || {
        let (http, job_url, admin) = (http.clone(), job_url.clone(), admin.clone());
        async move {
            let r = http.get(&job_url).bearer_auth(&admin).send().await.unwrap();
            r.json::<Value>().await.unwrap()["state"] == "done"
        }
    })
    .await;
    let export = h
        .http
        .get(format!(
            "{}/v1/campaigns/{pid}/codes?limit=100",
            h.router("ap")
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let codes: Vec<String> = export["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 20);

    // Two users race for each pool code, through different routers.
    let mut plan = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        for k in 0..2 {
            let via = ROUTERS[(i + k) % 3];
            plan.push((
                via,
                format!("pool-{i}-{k}"),
                format!("pool-{i}-{k}"),
                code.clone(),
            ));
        }
    }
    let mut records = at_once(&h, plan).await;
    let t = tally(&records);
    let won = records.iter().filter(|r| r.status == 201).count();
    let lost = records
        .iter()
        .filter(|r| r.status == 409 && r.reason.as_deref() == Some("already_redeemed"))
        .count();
    assert_eq!((won, lost), (20, 20), "pool race (seed {}): {t:?}", h.seed);
    assert!(records
        .iter()
        .filter(|r| r.status == 201)
        .all(|r| r.region.as_deref() == Some("ap")));

    // per_user_limit 2: three keys per user at once through three routers.
    let shared = create_campaign(
        &h,
        "ap",
        json!({
        "name": "chaos two each", "kind": "shared", "code": EU_CODE, "total_limit": 30,
        "per_user_limit": 2, "release_on_refund": true,
        "discount": {"type": "amount", "amount_minor": 100, "currency": "EUR"},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(shared["home_region"], "eu");
    let plan: Vec<_> = (0..10)
        .flat_map(|u| {
            ROUTERS.iter().enumerate().map(move |(k, via)| {
                (
                    *via,
                    format!("two-{u}"),
                    format!("two-{u}-key-{k}"),
                    EU_CODE.to_owned(),
                )
            })
        })
        .collect();
    let twice = at_once(&h, plan).await;
    for u in 0..10 {
        let mine: Vec<_> = twice
            .iter()
            .filter(|r| r.user == format!("two-{u}"))
            .collect();
        let wins = mine.iter().filter(|r| r.status == 201).count();
        let refused = mine
            .iter()
            .filter(|r| r.status == 409 && r.reason.as_deref() == Some("already_redeemed"))
            .count();
        assert_eq!(
            (wins, refused),
            (2, 1),
            "user two-{u} (seed {}): {mine:?}",
            h.seed
        );
    }
    records.extend(twice.iter().cloned());

    // Releases through another region's router free the use and the code.
    for u in 0..5 {
        let user = format!("two-{u}");
        let r = twice
            .iter()
            .find(|r| r.user == user && r.status == 201)
            .unwrap();
        release(&h, "ap", &user, r.redemption_id.as_ref().unwrap()).await;
    }
    let freed_codes: Vec<&Record> = records
        .iter()
        .filter(|r| r.status == 201 && r.user.starts_with("pool-"))
        .take(3)
        .collect();
    for r in &freed_codes {
        release(&h, "us", &r.user, r.redemption_id.as_ref().unwrap()).await;
    }
    let mut again: Vec<(&str, String, String, String)> = (0..5)
        .map(|u| {
            (
                "us",
                format!("two-{u}"),
                format!("two-{u}-again"),
                EU_CODE.to_owned(),
            )
        })
        .collect();
    for (i, r) in freed_codes.iter().enumerate() {
        again.push((
            ROUTERS[i % 3],
            format!("pool-next-{i}"),
            format!("pool-next-{i}"),
            r.code.clone(),
        ));
    }
    let again = at_once(&h, again).await;
    for r in &again {
        assert_eq!(r.status, 201, "after release (seed {}): {r:?}", h.seed);
    }
    records.extend(again);
    let summary = check(&h, &records, &[]).await;
    let (_, p) = get_json(&h.http, &format!("{}/v1/campaigns/{pid}", h.router("eu"))).await;
    assert_eq!(summary.active.get(&pid), Some(&20), "{p}");
    let sid = shared["campaign_id"].as_str().unwrap();
    assert_eq!(summary.active.get(sid), Some(&20));
}
