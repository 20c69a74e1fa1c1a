//! The ownership-sync rules (`ownership::sync::apply`) against a real
//! Postgres: what a map version does to this region's `slot_ownership`.
//! The sync must never undo a freeze (only the mover unfreezes), never
//! freeze a newer activation because of a stale map, and leave moving slots
//! to the mover.

use crate::helpers::TestApp;
use coupon_node::ownership::sync::apply;
use coupon_raft::map_view::MapView;
use serde_json::json;
use sqlx::PgPool;

/// A map with only the given (slot, region, epoch, state) rows.
fn map(slots: &[(u32, &str, u64, &str)]) -> MapView {
    let slots: Vec<_> = slots
        .iter()
        .map(|(s, r, e, st)| json!({"slot": s, "region": r, "epoch": e, "state": st}))
        .collect();
    serde_json::from_value(json!({"version": 7, "regions": [], "slots": slots})).expect("map view")
}

/// Replaces `slot_ownership` with `rows` of (slot, epoch, state).
async fn stored(db: &PgPool, rows: &[(i32, i64, &str)]) {
    sqlx::query("DELETE FROM slot_ownership")
        .execute(db)
        .await
        .unwrap();
    for (s, e, st) in rows {
        sqlx::query("INSERT INTO slot_ownership (slot, epoch, state) VALUES ($1, $2, $3)")
            .bind(s)
            .bind(e)
            .bind(st)
            .execute(db)
            .await
            .unwrap();
    }
}

async fn row(db: &PgPool, slot: i32) -> Option<(i64, String)> {
    sqlx::query_as("SELECT epoch, state FROM slot_ownership WHERE slot = $1")
        .bind(slot)
        .fetch_optional(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_slot_the_map_gives_us_is_inserted_or_activated_at_the_newer_epoch() {
    let app = TestApp::spawn().await;
    stored(&app.db, &[(2, 1, "frozen"), (3, 1, "active")]).await;
    let m = map(&[
        (1, "us", 1, "active"),
        (2, "us", 2, "active"),
        (3, "us", 1, "active"),
    ]);
    let changed = apply(&app.db, "us", &m).await.unwrap();
    assert_eq!(changed, 2);
    assert_eq!(row(&app.db, 1).await, Some((1, "active".into())));
    assert_eq!(row(&app.db, 2).await, Some((2, "active".into())));
    assert_eq!(row(&app.db, 3).await, Some((1, "active".into())));
}

#[tokio::test]
async fn a_frozen_slot_at_the_same_epoch_stays_frozen() {
    let app = TestApp::spawn().await;
    stored(&app.db, &[(3, 2, "frozen")]).await;
    let changed = apply(&app.db, "us", &map(&[(3, "us", 2, "active")]))
        .await
        .unwrap();
    assert_eq!(changed, 0);
    assert_eq!(row(&app.db, 3).await, Some((2, "frozen".into())));
}

#[tokio::test]
async fn a_slot_owned_elsewhere_is_frozen_unless_ours_is_newer() {
    let app = TestApp::spawn().await;
    stored(
        &app.db,
        &[(4, 1, "active"), (5, 3, "active"), (6, 2, "active")],
    )
    .await;
    let m = map(&[
        (4, "eu", 2, "active"),
        (5, "eu", 2, "active"),
        (6, "eu", 2, "active"),
    ]);
    apply(&app.db, "us", &m).await.unwrap();
    assert_eq!(row(&app.db, 4).await, Some((1, "frozen".into())));
    // A stale map (epoch 2) never freezes our newer activation (epoch 3).
    assert_eq!(row(&app.db, 5).await, Some((3, "active".into())));
    assert_eq!(row(&app.db, 6).await, Some((2, "frozen".into())));
}

#[tokio::test]
async fn a_moving_slot_is_left_to_the_mover() {
    let app = TestApp::spawn().await;
    stored(&app.db, &[(7, 1, "active"), (8, 1, "frozen")]).await;
    let m = map(&[
        (7, "eu", 1, "moving"),
        (8, "us", 1, "moving"),
        (9, "us", 1, "moving"),
    ]);
    let changed = apply(&app.db, "us", &m).await.unwrap();
    assert_eq!(changed, 0);
    assert_eq!(row(&app.db, 7).await, Some((1, "active".into())));
    assert_eq!(row(&app.db, 8).await, Some((1, "frozen".into())));
    assert_eq!(row(&app.db, 9).await, None);
}
