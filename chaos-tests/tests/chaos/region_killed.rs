//! Region-loss scenario 1 (docs/failover.md): `eu` is killed whole (router,
//! node, Postgres primary, Redis, raft member, and the standby it hosts for
//! `us`; every process SIGKILLed) in the middle of a redeem load on an `eu`
//! campaign through every router. Guards: `eu`'s codes are answered again
//! through `us` and `ap` once `eu`'s standby took over; every 201 any client
//! saw is in the promoted database (RPO 0); the cap holds; the checker
//! passes against the surviving databases.

use super::helpers::{tally, EU_CODE};
use coupon_chaos_tests::region::{kill_region, takeover_moves, wait_taken_over};
use coupon_chaos_tests::workload::{paced, redeem, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use std::time::{Duration, Instant};

const SEATS: i64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_killed_whole_mid_burst_is_taken_over_by_its_standby_with_nothing_acknowledged_lost(
) {
    let mut h = Harness::start_with_standbys("region-killed").await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    let before = coupon_chaos_tests::region::leases(&h).await;
    eprintln!("leases before the kill: {before:?}");
    let plan = super::helpers::attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "k1", 40);
    let kill_after = h.jitter(300, 700);
    let load = paced(&h, plan, 12, Duration::from_millis(15));
    let kill = async {
        tokio::time::sleep(kill_after).await;
        h.begin_mid_flight(1, "eu killed whole (SIGKILL)").await;
        (kill_region(&h, "eu"), chrono::Utc::now(), Instant::now())
    };
    let (during, (n, killed_at, killed)) = tokio::join!(load, kill);
    assert!(n >= 8, "killed only {n} processes of eu");
    wait_taken_over(&h, "eu", Duration::from_secs(60)).await;
    let took = killed.elapsed();
    let moves = takeover_moves(&h, "eu", killed_at, chrono::Utc::now()).await;
    eprintln!("eu taken over {took:?} after the kill (lease 4 s + margin 1 s)");

    // After the takeover: eu's codes answered again through us and ap.
    let mut after: Vec<Record> = Vec::new();
    let mut first_201 = None;
    for i in 0..40 {
        let via = if i % 2 == 0 { "us" } else { "ap" };
        let user = format!("k2-{via}-{i}");
        let token = h.issuer.user(&user);
        let r = redeem(&h.http, &h.router(via), via, &token, &user, EU_CODE).await;
        if r.status == 201 && first_201.is_none() {
            first_201 = Some(killed.elapsed());
        }
        after.push(r);
        if first_201.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        after
            .iter()
            .any(|r| r.status == 201 && r.region.as_deref() == Some("eu")),
        "no eu redemption after the takeover (seed {}): {:?}",
        h.seed,
        tally(&after)
    );
    eprintln!("RTO (kill → first 201 for an eu code via a surviving router): {first_201:?}");
    // Every attempt that saw no answer is retried with its own key through
    // a surviving router: a commit acknowledged before the kill replays.
    let mut records = during.clone();
    records.extend(after);
    let retries = super::helpers::retry_ambiguous_via(&h, &records, "us").await;
    records.extend(retries);
    let summary = super::helpers::check_surviving(&h, &["eu"], &records, &moves).await;
    let acked: usize = records
        .iter()
        .filter(|r| r.acknowledged())
        .map(|r| r.redemption_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    eprintln!(
        "seed {}: {} acknowledged redemptions, {} rows in the surviving databases; statuses {:?}",
        h.seed,
        acked,
        summary.rows,
        tally(&records)
    );
    assert!(summary.active.values().all(|n| *n <= SEATS));
}
