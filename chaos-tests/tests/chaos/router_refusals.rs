//! Guards the router's fail-closed answers around ownership changes:
//! - a slot the map shows `moving` (raft begin-move, old owner frozen) is
//!   answered 503 `unavailable` with `Retry-After`, nothing is written, and
//!   after the move is aborted (raft abort, old owner unfrozen) the same
//!   key succeeds at the old owner;
//! - a second 421 in one request (a stale router follows the old owner's
//!   hint to the new owner, which refuses too) is answered 503 with
//!   `Retry-After`, never relayed, never retried a third time; once the new
//!   owner serves again the same key succeeds there.

use super::helpers::{check, eventually, get_json, metrics, US_CODE, US_SLOT};
use coupon_chaos_tests::faults;
use coupon_chaos_tests::moves::{move_slot, retried};
use coupon_chaos_tests::workload::{redeem, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_node::ownership::pg;
use coupon_raft::client::AdminClient;
use std::time::Duration;

fn refused(r: &Record) -> bool {
    r.status == 503 && r.reason.as_deref() == Some("unavailable") && r.retry_after.is_some()
}

async fn slot_state(h: &Harness, via: &str) -> String {
    let (_, map) = get_json(&h.http, &format!("{}/v1/cluster/map", h.router(via))).await;
    map["slots"][US_SLOT as usize]["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moving_slot_and_a_second_421_are_answered_503_and_recover() {
    let h = Harness::start("router-refusals").await;
    shared_campaign(&h, "us", US_CODE, 50).await;
    let mut records = Vec::new();
    let us_db = sqlx::PgPool::connect(&h.cluster.region("us").db_url())
        .await
        .unwrap();
    let eu_db = sqlx::PgPool::connect(&h.cluster.region("eu").db_url())
        .await
        .unwrap();
    let admin = AdminClient::new(&h.cluster.raft[0].url(), &h.cluster.admin_token).unwrap();
    let slot = u32::from(US_SLOT);

    // 1. A move that began: raft says moving, the old owner is frozen.
    retried("begin move", || admin.begin_move("chaos-begin", slot, "eu")).await;
    assert_eq!(
        pg::freeze(&us_db, US_SLOT, i64::MAX).await.unwrap(),
        Some(1)
    );
    eventually(
        Duration::from_secs(10),
        "us router sees the slot moving",
        || async { slot_state(&h, "us").await == "moving" },
    )
    .await;
    let token = h.issuer.user("mover-1");
    let r = redeem(&h.http, &h.router("us"), "us", &token, "mover-1", US_CODE).await;
    assert!(refused(&r), "a moving slot (seed {}): {r:?}", h.seed);
    records.push(r);
    retried("abort move", || admin.abort_move("chaos-abort", slot)).await;
    assert!(pg::unfreeze(&us_db, US_SLOT, 1).await.unwrap());
    eventually(
        Duration::from_secs(10),
        "us router sees the slot active",
        || async { slot_state(&h, "us").await == "active" },
    )
    .await;
    let r = redeem(&h.http, &h.router("us"), "us", &token, "mover-1", US_CODE).await;
    assert_eq!((r.status, r.region.as_deref()), (201, Some("us")), "{r:?}");
    records.push(r);

    // 2. A stale router: its map still says us@1 after the slot moved to
    // eu@2, and eu refuses the slot too (frozen by hand).
    assert!(faults::cut_map_watch(&h.cluster.net, "router:ap") > 0);
    let moved = move_slot(&h, US_SLOT, "eu").await.expect("move us -> eu");
    // The old owner's hint comes from its map: wait until the region has it.
    eventually(Duration::from_secs(10), "us sees the move", || async {
        let (_, map) = get_json(&h.http, &format!("{}/v1/cluster/map", h.router("us"))).await;
        map["slots"][US_SLOT as usize]["region"] == "eu"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pg::freeze(&eu_db, US_SLOT, i64::MAX).await.unwrap(),
        Some(2)
    );
    let before = metrics(&h.http, &h.router("ap")).await;
    let token = h.issuer.user("stale-1");
    let r = redeem(&h.http, &h.router("ap"), "ap", &token, "stale-1", US_CODE).await;
    assert!(
        refused(&r),
        "two 421s in one request (seed {}): {r:?}",
        h.seed
    );
    records.push(r);
    let after = metrics(&h.http, &h.router("ap")).await;
    for region in ["us", "eu"] {
        let line = format!("coupon_router_misdirected_total{{region=\"{region}\"}}");
        assert!(
            count(&after, &line) == count(&before, &line) + 1.0,
            "one 421 from {region}:\n{after}"
        );
    }
    assert!(pg::unfreeze(&eu_db, US_SLOT, 2).await.unwrap());
    // eu's node follows its slot_ownership through LISTEN/NOTIFY: for the
    // few milliseconds until it has, it answers a bounded 503.
    let mut r = redeem(&h.http, &h.router("ap"), "ap", &token, "stale-1", US_CODE).await;
    for _ in 0..20 {
        if r.status != 503 {
            break;
        }
        records.push(r);
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = redeem(&h.http, &h.router("ap"), "ap", &token, "stale-1", US_CODE).await;
    }
    assert_eq!((r.status, r.region.as_deref()), (201, Some("eu")), "{r:?}");
    records.push(r);
    faults::heal(&h.cluster.net);
    us_db.close().await;
    eu_db.close().await;
    let summary = check(&h, &records, &[moved]).await;
    assert_eq!(summary.active.values().sum::<i64>(), 2);
}

/// Value of one exact sample line in a Prometheus exposition (0 if absent).
fn count(text: &str, line: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0.0)
}
