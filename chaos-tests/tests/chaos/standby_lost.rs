//! Region-loss scenario 4 (docs/failover.md): `us`'s synchronous standby
//! (hosted in `eu`) is killed. Strict by default: `us`'s commits block, so
//! its redeems get bounded 503s and never a 201 that is not replicated; no
//! acknowledged redemption is lost. After the explicit `couponctl region
//! degrade us`, commits resume, the blocked ones finish (a retry with the
//! same key replays them), and `us` shows as degraded in `/readyz` and in
//! its metrics.

use super::helpers::{eventually, get_json, metrics, tally, US_CODE};
use coupon_chaos_tests::moves::{cluster_file, couponctl};
use coupon_chaos_tests::workload::{burst, redeem_keyed, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_testkit::procs;
use std::time::Duration;

/// Router forward timeout (1.5 s in the chaos cluster) plus margin.
const BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_standby_blocks_commits_until_an_explicit_degrade_and_loses_nothing() {
    let mut h = Harness::start_with_standbys("standby-lost").await;
    shared_campaign(&h, "us", US_CODE, 100).await;
    let sb = h.cluster.region("us").standby.as_ref().expect("us standby");
    assert!(procs::signal(sb.pg.pid().expect("pid"), libc::SIGKILL));
    let w = h.timeline.begin("us's standby killed");
    let plan = super::helpers::attempts(&mut h, &["us", "ap"], US_CODE, "s1", 6);
    let blocked = burst(&h, plan, 12).await;
    // Straight to the node: its own bound (the commit wait), not a router's.
    let token = h.issuer.user("s1-direct");
    let direct = redeem_keyed(
        &h.http,
        &h.node("us"),
        "us-node",
        &token,
        "s1-direct",
        US_CODE,
        "s1-direct-key",
    )
    .await;
    assert!(
        direct.status == 503 && direct.elapsed < BOUND,
        "seed {}: a commit waiting for a lost standby must answer 503 in bounded time: {direct:?}",
        h.seed
    );
    for r in &blocked {
        assert!(
            r.status == 503 && r.retry_after.is_some() && r.elapsed < BOUND,
            "seed {}: with the standby lost (strict): {r:?}",
            h.seed
        );
    }
    // The explicit degrade.
    let out = std::process::Command::new(couponctl())
        .args(["region", "degrade", "us", "--cluster-file"])
        .arg(cluster_file(&h))
        .output()
        .expect("couponctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.timeline.end(w);
    let node = h.node("us");
    let http = h.http.clone();
    eventually(Duration::from_secs(10), "us shows as degraded", || {
        let (http, node) = (http.clone(), node.clone());
        async move {
            let (_, body) = get_json(&http, &format!("{node}/readyz")).await;
            body["replication"]["mode"] == "async (degraded)"
        }
    })
    .await;
    eventually(Duration::from_secs(10), "the degraded gauge at 1", || {
        let (http, node) = (http.clone(), node.clone());
        async move {
            metrics(&http, &node)
                .await
                .lines()
                .any(|l| l.starts_with("coupon_sync_replication_degraded") && l.ends_with(" 1"))
        }
    })
    .await;
    // Every blocked attempt retried with its key: 201, or 200 replaying a
    // commit that finished once the wait was released.
    let mut after: Vec<Record> = Vec::new();
    for r in blocked.iter().chain([&direct]) {
        let via = if r.via == "us-node" {
            "us"
        } else {
            r.via.as_str()
        };
        let token = h.issuer.user(&r.user);
        let rec = redeem_keyed(
            &h.http,
            &h.router(via),
            via,
            &token,
            &r.user,
            &r.code,
            &r.key,
        )
        .await;
        after.push(rec);
    }
    for r in &after {
        assert!(
            r.status == 201 || (r.status == 200 && r.replayed),
            "seed {}: after the degrade {r:?}\n{:?}",
            h.seed,
            tally(&after)
        );
    }
    let all: Vec<Record> = blocked.into_iter().chain([direct]).chain(after).collect();
    let summary = super::helpers::check(&h, &all, &[]).await;
    assert_eq!(
        summary.active.values().sum::<i64>(),
        13,
        "one redemption per user"
    );
}
