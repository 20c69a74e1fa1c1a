//! Region-loss scenario 6 (docs/failover.md §5): failback. `eu` is killed
//! whole and taken over by its standby (in `ap`); `eu` returns: its
//! processes restart and its old primary is rebuilt from a fresh base
//! backup as the new primary's synchronous standby (the node beside it
//! idles); `couponctl region switchover eu` moves the primary role back,
//! under load through the surviving routers; the copy in `ap` is rebuilt as
//! the standby again. Guards: every acknowledged redemption is in `eu`'s
//! primary at the end (no loss across two role changes), the old primary's
//! rows that were never acknowledged are gone, each role change bumped the
//! epoch once (2, then 3), only one database holds `eu`'s slots active at
//! the end, commits are synchronous again, and the checker passes.

use super::helpers::{tally, EU_CODE};
use coupon_chaos_tests::moves::{cluster_file, couponctl};
use coupon_chaos_tests::region::{kill_region, map, takeover_moves, wait_served, wait_taken_over};
use coupon_chaos_tests::workload::{burst, paced, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_region_rejoins_as_standby_and_a_switchover_brings_it_back_without_loss() {
    let mut h = Harness::start_with_standbys("failback").await;
    shared_campaign(&h, "eu", EU_CODE, 500).await;
    let plan = super::helpers::attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "f1", 8);
    let mut records: Vec<Record> = burst(&h, plan, 8).await;
    assert!(
        records.iter().all(|r| r.status == 201),
        "{:?}",
        tally(&records)
    );

    // Loss and takeover.
    let lost_at = chrono::Utc::now();
    assert!(kill_region(&h, "eu") >= 8);
    // A rejoin while the primary is gone and the takeover not begun must
    // leave everything alone: the standby is the one copy that matters.
    assert!(
        !h.cluster.rejoin("eu").await.expect("rejoin"),
        "rejoin acted with the primary unreachable"
    );
    wait_taken_over(&h, "eu", Duration::from_secs(60)).await;
    let mut moves = takeover_moves(&h, "eu", lost_at, chrono::Utc::now()).await;
    wait_served(&h, &["us", "ap"], EU_CODE, Duration::from_secs(30)).await;
    let plan = super::helpers::attempts(&mut h, &["us", "ap"], EU_CODE, "f2", 8);
    let during = burst(&h, plan, 8).await;
    assert!(
        during.iter().all(|r| r.status == 201),
        "{:?}",
        tally(&during)
    );
    records.extend(during);

    // eu returns, and its old primary rejoins as the standby.
    let revived = h.cluster.revive("eu").await.expect("revive");
    assert!(revived >= 4, "restarted {revived} processes of eu");
    assert!(
        h.cluster.rejoin("eu").await.expect("rejoin"),
        "nothing rebuilt"
    );
    let m = map(&h).await.expect("map");
    let eu = m
        .regions
        .iter()
        .find(|r| r.id.as_str() == "eu")
        .expect("eu");
    let standby = eu.standby.as_ref().expect("eu names a standby again");
    assert_eq!(standby.host.as_str(), "eu");
    assert_eq!(standby.node, h.cluster.region("eu").node_url());

    // Switchover back, under load through the surviving routers.
    let began = chrono::Utc::now();
    let file = cluster_file(&h);
    let switch = tokio::process::Command::new(couponctl())
        .args([
            "region",
            "switchover",
            "eu",
            "--wait-secs",
            "60",
            "--cluster-file",
        ])
        .arg(&file)
        .output();
    let plan = super::helpers::attempts(&mut h, &["us", "ap"], EU_CODE, "f3", 40);
    let load = paced(&h, plan, 8, Duration::from_millis(150));
    let (out, during) = tokio::join!(switch, load);
    let out = out.expect("couponctl");
    assert!(
        out.status.success(),
        "switchover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in &during {
        assert!(
            r.status == 201 || (r.status == 503 && r.retry_after.is_some()) || r.status == 0,
            "seed {}: during the switchover {r:?}",
            h.seed
        );
    }
    records.extend(during);
    moves.extend(takeover_moves(&h, "eu", began, chrono::Utc::now()).await);
    let m = map(&h).await.expect("map");
    let eu = m
        .regions
        .iter()
        .find(|r| r.id.as_str() == "eu")
        .expect("eu");
    assert_eq!(
        eu.node,
        h.cluster.region("eu").node_url(),
        "eu's own node serves again"
    );
    assert_eq!(m.slot(586).map(|s| s.epoch), Some(3));

    // The copy in ap rejoins as the standby; commits are synchronous again.
    assert!(
        h.cluster.rejoin("eu").await.expect("rejoin"),
        "nothing rebuilt"
    );
    let home = h.cluster.region("eu").pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
    );
    assert_eq!(
        home.expect("psql"),
        "1",
        "eu's primary has its synchronous standby"
    );
    wait_served(&h, &["us", "eu", "ap"], EU_CODE, Duration::from_secs(30)).await;
    let plan = super::helpers::attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "f4", 5);
    let after = burst(&h, plan, 6).await;
    assert!(after.iter().all(|r| r.status == 201), "{:?}", tally(&after));
    records.extend(after);
    // Ambiguous attempts retried with their keys.
    let retries = super::helpers::retry_ambiguous_via(&h, &records, "us").await;
    records.extend(retries);
    super::helpers::check_surviving(&h, &[], &records, &moves).await;
}
