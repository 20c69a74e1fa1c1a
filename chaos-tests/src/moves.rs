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

/// Every region's Postgres, as the mover needs them.
pub async fn stores(h: &Harness) -> mover::Stores {
    let mut stores = mover::Stores::default();
    for r in ["us", "eu", "ap"] {
        let pool = sqlx::PgPool::connect(&h.cluster.region(r).db_url())
            .await
            .expect("a region's postgres");
        stores.0.insert(r.to_owned(), pool);
    }
    stores
}

/// The raft admin client over every member.
pub fn admin(h: &Harness) -> AdminClient {
    let urls: Vec<String> = h.cluster.raft.iter().map(|m| m.url()).collect();
    AdminClient::with_members(&urls, &h.cluster.admin_token).expect("raft admin client")
}

/// Moves `slot` to `to` with the node's mover (docs/architecture.md §7:
/// begin, freeze, copy + verify, activate at epoch+1, complete) and returns
/// the record the checker needs, or the mover's error.
pub async fn move_slot(h: &Harness, slot: u16, to: &str) -> Result<Move, MoveError> {
    let stores = stores(h).await;
    let began_at = Utc::now();
    let report = mover::move_slot(&admin(h), &stores, slot, to, &Default::default()).await;
    let completed_at = Utc::now();
    for p in stores.0.values() {
        p.close().await;
    }
    let report = report?.ok_or_else(|| MoveError::Refused(format!("slot {slot} is in {to}")))?;
    if report.outcome != mover::Outcome::Completed {
        return Err(MoveError::Refused(format!(
            "rolled back: {:?}",
            report.error
        )));
    }
    Ok(Move {
        slot,
        from: report.from,
        to: report.to,
        new_epoch: report.new_epoch,
        began_at,
        completed_at,
    })
}

/// The `couponctl` binary built beside the test binary.
pub fn couponctl() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target/debug")
        .join("couponctl")
}

/// Writes the cluster file `couponctl` reads (docs/api.md's shape).
pub fn cluster_file(h: &Harness) -> std::path::PathBuf {
    let file = h.cluster.root.join("dev-cluster.json");
    let issuer = serde_json::json!({"alg": "EdDSA",
        "private_key_pem": h.cluster.root.join("issuer.pem"),
        "iss": h.issuer.iss, "aud": h.issuer.aud});
    std::fs::write(&file, h.cluster.cluster_file(issuer).to_string()).expect("cluster file");
    file
}

/// Every region whose Postgres holds `slot` active, with the epoch.
pub async fn active_owners(h: &Harness, slot: u16) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for r in ["us", "eu", "ap"] {
        let db = sqlx::PgPool::connect(&h.cluster.region(r).db_url())
            .await
            .expect("a region's postgres");
        let e: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM slot_ownership WHERE slot = $1 AND state = 'active'",
        )
        .bind(i32::from(slot))
        .fetch_optional(&db)
        .await
        .expect("slot_ownership");
        db.close().await;
        if let Some(e) = e {
            out.push((r.to_owned(), e));
        }
    }
    out
}
