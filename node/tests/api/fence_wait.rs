//! A redeem transaction takes its slot's fence lock (shared) before it reads
//! the slot's ownership, in the same round trip as its `BEGIN`: a move that
//! holds the lock exclusively while it freezes the slot makes every redeem
//! that starts meanwhile wait, then see the frozen slot and refuse with
//! `misdirected`, writing nothing. Both writers are checked: the single
//! transaction and a group of winners.

use crate::group_commit::member;
use crate::helpers::TestApp;
use coupon_node::error::ApiError;
use coupon_node::metrics::Metrics;
use coupon_node::ownership::pg::SLOT_LOCK_CLASS;
use coupon_node::redeem::group_commit::try_commit;
use coupon_node::redeem::pg::{redeem_tx, Hint};
use coupon_node::redeem::seats::SeatFrontier;
use coupon_node::store::campaigns;
use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_redeem_started_while_a_move_freezes_its_slot_waits_and_refuses() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "FENCEWT1", "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    let campaign = Arc::new(campaigns::by_id(&app.db, &id).await.unwrap().unwrap());
    let slot = i32::from(campaign.slot);

    // The mover's side: the exclusive lock, then the freeze, not committed.
    let mut mover = app.db.acquire().await.unwrap();
    let mut freeze = mover.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SLOT_LOCK_CLASS)
        .bind(slot)
        .execute(&mut *freeze)
        .await
        .unwrap();
    sqlx::query("UPDATE slot_ownership SET state = 'frozen' WHERE slot = $1")
        .bind(slot)
        .execute(&mut *freeze)
        .await
        .unwrap();

    let single = {
        let (db, req) = (app.db.clone(), member(&campaign, "fw-single", 1).req);
        tokio::spawn(async move {
            let seats = SeatFrontier::new(&db, Arc::new(Metrics::new()));
            redeem_tx(&db, &seats, &req, Hint::default()).await
        })
    };
    let group = {
        let db = app.db.clone();
        let won = [member(&campaign, "fw-g1", 2), member(&campaign, "fw-g2", 3)];
        tokio::spawn(async move {
            let mut conn = db.acquire().await.unwrap();
            try_commit(&mut conn, &Metrics::new(), &won).await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !single.is_finished(),
        "the single redeem did not wait for the fence lock"
    );
    assert!(
        !group.is_finished(),
        "the group did not wait for the fence lock"
    );

    freeze.commit().await.unwrap();
    let single = single.await.unwrap();
    assert!(
        matches!(single, Err(ApiError::Misdirected { .. })),
        "single: {single:?}"
    );
    let group = group.await.unwrap();
    assert!(
        matches!(group, Err(ApiError::Misdirected { .. })),
        "group: {:?}",
        group.map(|d| d.len())
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE campaign_id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a redeem wrote into a frozen slot");
}
