//! Guards docs/architecture.md §3.4 "one owner per slot" across a slot move with a
//! stale router: the `ap` router's raft watch is cut, the slot of `SAVE20`
//! moves `us` → `eu` (§7 order: begin, freeze, copy + verify, activate at
//! epoch+1, complete); the stale router sends to the old owner at the old
//! epoch, gets 421 with the owner hint, re-plans once and succeeds at `eu`.
//! A key redeemed before the move replays (no second use).

use super::helpers::{attempts, check, eventually, get_json, metrics, tally, US_CODE, US_SLOT};
use coupon_chaos_tests::faults;
use coupon_chaos_tests::moves::move_slot;
use coupon_chaos_tests::workload::{burst, redeem, shared_campaign};
use coupon_chaos_tests::Harness;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_router_follows_the_421_hint_to_the_new_owner_without_double_use() {
    let mut h = Harness::start("stale-map").await;
    shared_campaign(&h, "ap", US_CODE, 30).await;
    let plan = attempts(&mut h, &["ap"], US_CODE, "pre", 5);
    let before = burst(&h, plan, 5).await;
    assert!(
        before
            .iter()
            .all(|r| r.status == 201 && r.region.as_deref() == Some("us")),
        "{before:?}"
    );

    assert!(faults::cut_map_watch(&h.cluster.net, "router:ap") > 0);
    let moved = move_slot(&h, US_SLOT, "eu").await.expect("move the slot");
    assert_eq!((moved.from.as_str(), moved.new_epoch), ("us", 2));

    // The us router follows the map; the cut ap router still has epoch 1.
    let (http, us) = (h.http.clone(), h.router("us"));
    eventually(Duration::from_secs(15), "us router sees the move", || {
        let (http, us) = (http.clone(), us.clone());
        async move {
            get_json(&http, &format!("{us}/v1/cluster/map")).await.1["slots"][US_SLOT as usize]
                ["region"]
                == "eu"
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, stale) = get_json(&h.http, &format!("{}/v1/cluster/map", h.router("ap"))).await;
    assert_eq!(
        stale["slots"][US_SLOT as usize]["region"], "us",
        "ap's map must still be stale"
    );

    let plan = attempts(&mut h, &["ap", "us"], US_CODE, "post", 6);
    let after = burst(&h, plan, 6).await;
    for r in &after {
        assert!(
            r.status == 201 && r.region.as_deref() == Some("eu"),
            "seed {}: {r:?}\n{:?}",
            h.seed,
            tally(&after)
        );
    }
    let m = metrics(&h.http, &h.router("ap")).await;
    assert!(
        m.contains("coupon_router_misdirected_total{region=\"us\"}"),
        "ap router saw no 421:\n{m}"
    );
    // A key redeemed at us before the move replays at eu: the same use.
    let first = &before[0];
    let token = h.issuer.user(&first.user);
    let replay = redeem(&h.http, &h.router("ap"), "ap", &token, &first.user, US_CODE).await;
    assert_eq!(
        (replay.status, &replay.redemption_id),
        (200, &first.redemption_id),
        "{replay:?}"
    );
    // The old owner refuses the slot even when asked directly with the old epoch.
    let direct = h
        .http
        .post(format!("{}/v1/coupons/redeem", h.node("us")))
        .bearer_auth(h.issuer.user("direct"))
        .header("Idempotency-Key", "direct-1")
        .header("Coupon-Slot-Epoch", "1")
        .json(&serde_json::json!({"code": US_CODE, "order_id": "o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 421);
    let hint: serde_json::Value = direct.json().await.unwrap();
    assert_eq!(
        (hint["owner"].as_str(), hint["epoch"].as_u64()),
        (Some("eu"), Some(2)),
        "{hint}"
    );

    let all: Vec<_> = before.into_iter().chain(after).chain([replay]).collect();
    let summary = check(&h, &all, &[moved]).await;
    assert_eq!(summary.active.values().sum::<i64>(), 5 + 12);
}
