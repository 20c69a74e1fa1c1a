//! Region-loss scenario 5 (docs/failover.md): the takeover of `eu` is cut
//! short between the promotion of its standby and the raft commit (the
//! standby node exits there, failpoint `takeover_after_promote`). Guards:
//! the region stays `failing_over` (nobody serves it, nobody serves it
//! twice); `couponctl region failover eu` re-run waits for the takeover
//! under way instead of starting another; the restarted standby node
//! completes it; exactly one database holds `eu`'s slots active at the new
//! epoch, and its redemptions are all there.

use super::helpers::{tally, EU_CODE};
use coupon_chaos_tests::moves::{cluster_file, couponctl};
use coupon_chaos_tests::region::{map, surviving_db_urls, takeover_moves, wait_taken_over};
use coupon_chaos_tests::workload::{burst, redeem, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_raft::model::FailoverState;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_cut_between_promote_and_commit_is_completed_by_a_rerun_with_one_owner() {
    let mut h = Harness::start_with_standbys("takeover-cut").await;
    shared_campaign(&h, "eu", EU_CODE, 100).await;
    let plan = super::helpers::attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "t1", 5);
    let before = burst(&h, plan, 6).await;
    assert!(
        before.iter().all(|r| r.status == 201),
        "{:?}",
        tally(&before)
    );
    // Arm the failpoint in eu's standby node (it idles; restarting it is free).
    {
        let sb = h
            .cluster
            .region_mut("eu")
            .standby
            .as_mut()
            .expect("standby");
        sb.node
            .set_env("FAILPOINTS", "takeover_after_promote=return");
        sb.node.restart().expect("restart standby node");
    }
    let lost_at = chrono::Utc::now();
    // eu's node dies (its Postgres stays up): the lease lapses.
    h.cluster.region_mut("eu").node.kill();
    let started = Instant::now();
    // The takeover begins, the standby is promoted, the node exits.
    let sb_url = surviving_db_urls(&h, &["eu"])["eu"].clone();
    let sb_db = sqlx::PgPool::connect(&sb_url).await.expect("standby db");
    loop {
        let promoted = !sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&sb_db)
            .await
            .unwrap_or(true);
        if promoted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never promoted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = map(&h).await.expect("map");
    let rec = m
        .failovers
        .iter()
        .find(|f| f.region.as_str() == "eu")
        .expect("record");
    assert_eq!(
        rec.state,
        FailoverState::FailingOver,
        "cut short before the raft commit"
    );
    let eu_slot = m.slot(586).expect("slot");
    assert_eq!(
        (eu_slot.epoch, eu_slot.state),
        (1, coupon_raft::model::SlotState::FailingOver)
    );
    // Nobody serves eu's codes meanwhile (the old node is dead, the standby
    // node is down, the map says failing_over).
    let token = h.issuer.user("t-mid");
    let mid = redeem(&h.http, &h.router("us"), "us", &token, "t-mid", EU_CODE).await;
    assert_eq!(mid.status, 503, "seed {}: mid-takeover {mid:?}", h.seed);
    // An operator re-runs the takeover: it joins the one under way…
    let file = cluster_file(&h);
    let cli = tokio::process::Command::new(couponctl())
        .args([
            "region",
            "failover",
            "eu",
            "--wait-secs",
            "60",
            "--cluster-file",
        ])
        .arg(&file)
        .output();
    // …which the restarted standby node (no failpoint) completes.
    let restart = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sb = h
            .cluster
            .region_mut("eu")
            .standby
            .as_mut()
            .expect("standby");
        sb.node.set_env("FAILPOINTS", "");
        sb.node.restart().expect("restart standby node");
    };
    let (out, ()) = tokio::join!(cli, restart);
    let out = out.expect("couponctl");
    assert!(
        out.status.success(),
        "region failover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_taken_over(&h, "eu", Duration::from_secs(30)).await;
    let moves = takeover_moves(&h, "eu", lost_at, chrono::Utc::now()).await;
    let m = map(&h).await.expect("map");
    assert_eq!(
        m.slot(586).map(|s| s.epoch),
        Some(2),
        "one epoch bump, not two"
    );
    // Exactly one store holds slot 586 active: the promoted one, at epoch 2.
    let owners = coupon_chaos_tests::moves::active_owners(&h, 586).await;
    assert!(
        owners.iter().all(|(r, e)| r != "eu" || *e == 1),
        "the old eu primary cannot have moved on: {owners:?}"
    );
    let epoch: i64 = sqlx::query_scalar(
        "SELECT epoch FROM slot_ownership WHERE slot = 586 AND state = 'active'",
    )
    .fetch_one(&sb_db)
    .await
    .expect("promoted owner row");
    assert_eq!(epoch, 2);
    let mut after: Vec<Record> = Vec::new();
    for i in 0..4 {
        let via = ["us", "ap"][i % 2];
        let user = format!("t2-{i}");
        let token = h.issuer.user(&user);
        after.push(redeem(&h.http, &h.router(via), via, &token, &user, EU_CODE).await);
    }
    assert!(after.iter().all(|r| r.status == 201), "{:?}", tally(&after));
    let records: Vec<Record> = before.into_iter().chain([mid]).chain(after).collect();
    super::helpers::check_surviving(&h, &["eu"], &records, &moves).await;
}
