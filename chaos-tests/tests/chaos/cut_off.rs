//! The body of the region-loss scenarios where `eu` stays alive but is cut
//! off (both ways: `region_partitioned`; one way, `eu` hears raft but raft
//! does not hear `eu`: `one_way_partition`). Its local clients keep reaching
//! its router. Guards, from the clients' own records: `eu`'s old primary
//! answers nothing for its slots (no 201, no validate 200) once the takeover
//! has begun; `eu`'s codes are answered by the standby through `us` and
//! `ap`; nothing acknowledged is missing from the promoted database, and no
//! row only the old primary holds was ever acknowledged; the checker passes
//! against the surviving databases.

use super::helpers::{tally, EU_CODE};
use chrono::{DateTime, Utc};
use coupon_chaos_tests::region::{
    map, surviving_db_urls, takeover_moves, validate, wait_taken_over,
};
use coupon_chaos_tests::workload::{paced, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub async fn run(name: &str, fault: &str, cut: impl FnOnce(&Harness)) {
    let mut h = Harness::start_with_standbys(name).await;
    shared_campaign(&h, "eu", EU_CODE, 400).await;
    let old_db = h.cluster.region("eu").db_url();
    // When raft first shows the takeover, from a watcher that polls it.
    let began: Arc<Mutex<Option<DateTime<Utc>>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let plan = super::helpers::attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "c1", 60);
    let cut_after = h.jitter(400, 900);
    let load = async {
        let out = paced(&h, plan, 12, Duration::from_millis(70)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    let reads = async {
        let mut out = Vec::new();
        let router = h.router("eu");
        for i in 0.. {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            out.push(validate(&h, &router, &format!("reader-{i}"), EU_CODE).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out
    };
    let watch = async {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(m) = map(&h).await {
                if m.failovers.iter().any(|f| f.region.as_str() == "eu") {
                    began.lock().unwrap().get_or_insert_with(Utc::now);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let fault_then_wait = async {
        tokio::time::sleep(cut_after).await;
        h.begin_mid_flight(1, fault).await;
        let cut_at = Utc::now();
        cut(&h);
        wait_taken_over(&h, "eu", Duration::from_secs(60)).await;
        // Keep the load on after the takeover, then stop the side tasks.
        tokio::time::sleep(Duration::from_secs(2)).await;
        cut_at
    };
    // The load outlives the takeover; the readers and the watcher stop with it.
    let (during, reads, (), cut_at) = tokio::join!(load, reads, watch, fault_then_wait);
    let began = began.lock().unwrap().expect("the watcher saw the takeover");
    eprintln!(
        "seed {}: cut at {cut_at}, takeover began {} ms later; statuses {:?}",
        h.seed,
        (began - cut_at).num_milliseconds(),
        tally(&during)
    );
    // Split brain, from the clients' side: the old primary answered nothing
    // that started after the takeover began.
    for r in during
        .iter()
        .filter(|r| r.via == "eu" && r.started_at >= began)
    {
        assert!(
            !r.acknowledged(),
            "seed {}: eu's old primary acknowledged a redeem after the takeover began: {r:?}",
            h.seed
        );
    }
    for (status, at) in &reads {
        assert!(
            !(*status == 200 && *at > began + chrono::Duration::milliseconds(100)),
            "seed {}: eu's old primary answered a validate at {at}, after the takeover began at {began}",
            h.seed
        );
    }
    assert!(
        reads.iter().any(|(s, _)| *s == 503),
        "seed {}: the cut-off region never stopped serving",
        h.seed
    );
    let after_takeover = during
        .iter()
        .filter(|r| r.via != "eu" && r.status == 201 && r.started_at > began)
        .count();
    assert!(
        after_takeover > 0,
        "seed {}: eu's codes never answered via us/ap after the takeover: {:?}",
        h.seed,
        tally(&during)
    );
    // Ambiguous attempts retried with their keys through a surviving router.
    let mut records: Vec<Record> = during.clone();
    records.extend(super::helpers::retry_ambiguous_via(&h, &during, "us").await);
    let moves = takeover_moves(&h, "eu", cut_at, Utc::now()).await;
    super::helpers::check_surviving(&h, &["eu"], &records, &moves).await;
    // Rows only the old primary holds were never acknowledged (they are
    // discarded when it is rebuilt from the new one, never replayed).
    let ids = |url: String| async move {
        let db = sqlx::PgPool::connect(&url).await.expect("db");
        sqlx::query_scalar::<_, String>("SELECT redemption_id FROM redemptions")
            .fetch_all(&db)
            .await
            .expect("ids")
            .into_iter()
            .collect::<BTreeSet<_>>()
    };
    let old = ids(old_db).await;
    let new = ids(surviving_db_urls(&h, &["eu"])["eu"].clone()).await;
    let acked: BTreeSet<String> = records
        .iter()
        .filter(|r| r.acknowledged())
        .filter_map(|r| r.redemption_id.clone())
        .collect();
    for id in old.difference(&new) {
        assert!(
            !acked.contains(id),
            "seed {}: {id} was acknowledged but lives only on the old primary",
            h.seed
        );
    }
}
