//! Planned slot moves made by scenarios, recorded with their wall-clock
//! times so the checker can judge rows against the ownership history.

use crate::checker::Move;
use crate::harness::Harness;
use chrono::Utc;
use coupon_node::ownership::mover::{self, MoveError};
use coupon_raft::client::AdminClient;
use serde_json::Value;

/// Retries a raft admin write whose commit was not confirmed in time, with
/// the same request id (the state machine deduplicates it).
pub async fn retried<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, coupon_raft::client::ClientError>>,
{
    let mut last = None;
    for _ in 0..10 {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    panic!("{what}: {last:?}");
}

/// The region that owns `slot` in the raft map now.
pub async fn owner(h: &Harness, slot: u16) -> String {
    let map: Value = h
        .http
        .get(format!("{}/v1/cluster/map", h.cluster.raft[0].url()))
        .send()
        .await
        .expect("raft map")
        .json()
        .await
        .expect("raft map json");
    map["slots"][slot as usize]["region"]
        .as_str()
        .expect("slot in the map")
        .to_owned()
}

/// Moves `slot` to `to` with the node's mover (DESIGN order: begin, freeze,
/// copy + verify, activate at epoch+1, complete) and returns the record the
/// checker needs, or the mover's error.
pub async fn move_slot(h: &Harness, slot: u16, to: &str) -> Result<Move, MoveError> {
    let from = owner(h, slot).await;
    let admin = AdminClient::new(&h.cluster.raft[0].url(), &h.cluster.admin_token)
        .expect("raft admin client");
    let from_db = sqlx::PgPool::connect(&h.cluster.region(&from).db_url())
        .await
        .expect("old owner's postgres");
    let to_db = sqlx::PgPool::connect(&h.cluster.region(to).db_url())
        .await
        .expect("new owner's postgres");
    let began_at = Utc::now();
    let report = mover::move_slot(&admin, &from_db, &to_db, slot, to).await;
    let completed_at = Utc::now();
    from_db.close().await;
    to_db.close().await;
    let report = report?;
    Ok(Move {
        slot,
        from: report.from,
        to: report.to,
        new_epoch: report.new_epoch,
        began_at,
        completed_at,
    })
}
