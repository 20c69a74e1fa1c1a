//! Region-loss scenario 3 (docs/failover.md): `eu`'s node is paused
//! (SIGSTOP) longer than its region lease, with redeems queued on it; the
//! raft leader takes `eu` over by its standby; then the node resumes. Guards:
//! its first answers are 503 (the lease lapsed, then raft refuses the old
//! primary), never 201; none of its writes lands in any database; the
//! region's codes are served by the standby, and the checker passes.

use super::helpers::{get_json, tally, EU_CODE};
use coupon_chaos_tests::region::{surviving_db_urls, takeover_moves, validate, wait_taken_over};
use coupon_chaos_tests::workload::{redeem, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_paused_past_its_lease_answers_503_after_the_takeover_and_writes_nothing() {
    let h = Harness::start_with_standbys("lease-pause").await;
    shared_campaign(&h, "eu", EU_CODE, 100).await;
    let old_node = h.node("eu");
    let old_db = h.cluster.region("eu").db_url();
    let paused_at = chrono::Utc::now();
    h.cluster.region("eu").node.pause();
    let w = h.timeline.begin("eu node paused (SIGSTOP)");
    // Redeems sent straight to the paused node queue in its socket.
    let mut queued = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (http, node) = (h.http.clone(), old_node.clone());
        let user = format!("paused-{i}");
        let token = h.issuer.user(&user);
        queued.spawn(async move { redeem(&http, &node, "eu-node", &token, &user, EU_CODE).await });
    }
    // So does a validate (a read: served only under the lease, or it is a
    // second region answering for the slot).
    let read = {
        let (http, node, token) = (
            h.http.clone(),
            old_node.clone(),
            h.issuer.user("paused-reader"),
        );
        tokio::spawn(async move {
            http.post(format!("{node}/v1/coupons/validate"))
                .bearer_auth(token)
                .timeout(Duration::from_secs(30))
                .json(&serde_json::json!({ "code": EU_CODE }))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        })
    };
    let took = wait_taken_over(&h, "eu", Duration::from_secs(60)).await;
    let moves = takeover_moves(&h, "eu", paused_at, chrono::Utc::now()).await;
    eprintln!("eu taken over {took:?} into the pause");
    h.cluster.region("eu").node.resume();
    h.timeline.end(w);
    let mut first: Vec<Record> = Vec::new();
    while let Some(r) = queued.join_next().await {
        first.push(r.expect("redeem task"));
    }
    let read = read.await.expect("validate task");
    assert_eq!(
        read, 503,
        "seed {}: the resumed old node answered a validate",
        h.seed
    );
    for r in &first {
        assert!(
            r.status == 503 && r.retry_after.is_some(),
            "seed {}: the resumed old node answered {r:?}",
            h.seed
        );
    }
    // And it stays fenced, also once its renewal loop had time to run
    // (raft must refuse a primary on the replaced timeline).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let token = h.issuer.user("paused-late");
    let late = redeem(
        &h.http,
        &old_node,
        "eu-node",
        &token,
        "paused-late",
        EU_CODE,
    )
    .await;
    assert_eq!(late.status, 503, "seed {}: {late:?}", h.seed);
    let (s, _) = validate(&h, &old_node, "paused-late", EU_CODE).await;
    assert_eq!(
        s, 503,
        "seed {}: the fenced old node answered a validate",
        h.seed
    );
    let (s, body) = get_json(&h.http, &format!("{old_node}/readyz")).await;
    assert_eq!(s, 503, "old node ready again: {body}");
    // No write of the old node landed anywhere.
    let keys: Vec<String> = first.iter().chain([&late]).map(|r| r.key.clone()).collect();
    for url in [old_db.clone(), surviving_db_urls(&h, &["eu"])["eu"].clone()] {
        let db = sqlx::PgPool::connect(&url).await.expect("db");
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE idempotency_key = ANY($1)")
                .bind(&keys)
                .fetch_one(&db)
                .await
                .expect("count");
        assert_eq!(
            n, 0,
            "seed {}: a write of the paused node landed in {url}",
            h.seed
        );
    }
    // The region's codes are served by the standby through the routers.
    let mut after = Vec::new();
    for i in 0..6 {
        let via = ["us", "ap"][i % 2];
        let user = format!("after-{i}");
        let token = h.issuer.user(&user);
        after.push(redeem(&h.http, &h.router(via), via, &token, &user, EU_CODE).await);
    }
    assert!(
        after.iter().filter(|r| r.status == 201).count() >= 4,
        "seed {}: {:?}",
        h.seed,
        tally(&after)
    );
    let records: Vec<Record> = after;
    super::helpers::check_surviving(&h, &["eu"], &records, &moves).await;
}
