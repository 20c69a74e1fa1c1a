//! Guards the mover's way back (abortable until activation): a copy that
//! does not verify (the target's Postgres alters every copied redemption, a
//! checksum mismatch) and a copy that fails outright (the target refuses
//! the rows) each abort the move. After each: the raft map shows the slot
//! `active` at its old owner and epoch, the old owner serves it again (201
//! through every router), the target holds none of its rows and does not
//! serve it, and the checker (with no move in the history) finds nothing.

use super::helpers::{attempts, check, eventually, get_json, US_CODE, US_SLOT};
use coupon_chaos_tests::moves::move_slot;
use coupon_chaos_tests::workload::{burst, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_node::ownership::mover::MoveError;
use std::time::Duration;

/// Corrupts each copied row (a checksum mismatch) or refuses it.
const CORRUPT: &str = "CREATE FUNCTION chaos_corrupt() RETURNS trigger LANGUAGE plpgsql AS \
    $$ BEGIN NEW.order_id := NEW.order_id || '~'; RETURN NEW; END $$; \
    CREATE TRIGGER chaos_corrupt BEFORE INSERT ON redemptions FOR EACH ROW EXECUTE FUNCTION chaos_corrupt();";
const REFUSE: &str = "CREATE FUNCTION chaos_refuse() RETURNS trigger LANGUAGE plpgsql AS \
    $$ BEGIN RAISE EXCEPTION 'chaos: disk full'; END $$; \
    CREATE TRIGGER chaos_refuse BEFORE INSERT ON redemptions FOR EACH ROW EXECUTE FUNCTION chaos_refuse();";

async fn after_abort(h: &mut Harness, tag: &str, records: &mut Vec<Record>) {
    let (http, raft) = (h.http.clone(), h.cluster.raft[0].url());
    let (_, map) = get_json(&http, &format!("{raft}/v1/cluster/map")).await;
    let slot = &map["slots"][US_SLOT as usize];
    assert_eq!(
        (
            slot["region"].as_str(),
            slot["epoch"].as_u64(),
            slot["state"].as_str()
        ),
        (Some("us"), Some(1), Some("active")),
        "raft after the abort ({tag}, seed {}): {slot}",
        h.seed
    );
    let eu = sqlx::PgPool::connect(&h.cluster.region("eu").db_url())
        .await
        .unwrap();
    let (rows, serving): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM redemptions WHERE slot = $1), \
                (SELECT count(*) FROM slot_ownership WHERE slot = $1 AND state = 'active')",
    )
    .bind(i32::from(US_SLOT))
    .fetch_one(&eu)
    .await
    .unwrap();
    eu.close().await;
    assert_eq!(
        (rows, serving),
        (0, 0),
        "the target after the abort ({tag})"
    );
    // Routers may have cached the `moving` state: wait until each serves.
    for via in ["us", "eu", "ap"] {
        let url = h.router(via);
        eventually(
            Duration::from_secs(10),
            "router sees the slot active",
            || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    get_json(&http, &format!("{url}/v1/cluster/map")).await.1["slots"]
                        [US_SLOT as usize]["state"]
                        == "active"
                }
            },
        )
        .await;
    }
    let plan = attempts(h, &["us", "eu", "ap"], US_CODE, tag, 2);
    let after = burst(h, plan, 6).await;
    for r in &after {
        assert_eq!(
            (r.status, r.region.as_deref()),
            (201, Some("us")),
            "the old owner serves again after the abort ({tag}, seed {}): {r:?}",
            h.seed
        );
    }
    records.extend(after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_whose_copy_does_not_verify_or_fails_is_aborted_back_to_the_old_owner() {
    let mut h = Harness::start("mover-paths").await;
    shared_campaign(&h, "us", US_CODE, 100).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], US_CODE, "pre", 3);
    let mut records = burst(&h, plan, 6).await;
    assert!(records.iter().all(|r| r.status == 201), "{records:?}");
    let eu = sqlx::PgPool::connect(&h.cluster.region("eu").db_url())
        .await
        .unwrap();

    sqlx::raw_sql(CORRUPT).execute(&eu).await.unwrap();
    match move_slot(&h, US_SLOT, "eu").await {
        Err(MoveError::Verify { table, .. }) => assert_eq!(table, "redemptions"),
        other => panic!(
            "a corrupted copy must not verify (seed {}): {other:?}",
            h.seed
        ),
    }
    sqlx::raw_sql("DROP TRIGGER chaos_corrupt ON redemptions")
        .execute(&eu)
        .await
        .unwrap();
    after_abort(&mut h, "verify", &mut records).await;

    sqlx::raw_sql(REFUSE).execute(&eu).await.unwrap();
    match move_slot(&h, US_SLOT, "eu").await {
        Err(MoveError::Postgres(_)) => {}
        other => panic!(
            "a refused copy must fail the move (seed {}): {other:?}",
            h.seed
        ),
    }
    sqlx::raw_sql("DROP TRIGGER chaos_refuse ON redemptions")
        .execute(&eu)
        .await
        .unwrap();
    after_abort(&mut h, "refused", &mut records).await;
    eu.close().await;

    let summary = check(&h, &records, &[]).await;
    assert_eq!(summary.active.values().sum::<i64>(), 9 + 6 + 6);
}
