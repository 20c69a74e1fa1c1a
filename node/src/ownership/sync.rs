//! Keeps this region's `slot_ownership` in step with the raft map.
//!
//! Rules, applied on every new map version (and retried on error):
//! - a slot the map says is ours and `active` at epoch e: activate at e when
//!   the stored epoch is older (or there is no row). A frozen row at the
//!   *same* epoch stays frozen: only the mover unfreezes (abort path), so a
//!   sync acting on a stale map can never undo a freeze.
//! - a slot the map says is another region's and `active`: freeze ours
//!   (exclusive lock: waits out in-flight redeem transactions).
//! - a `moving` slot: untouched; the mover owns it until the move ends.

use super::{pg, Regional};
use coupon_raft::client::MapClient;
use coupon_raft::map_view::MapView;
use coupon_raft::model::SlotState;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Pause before retrying a failed sync of the same map version.
const RETRY: Duration = Duration::from_millis(500);

pub async fn run(r: &Regional, maps: &MapClient, db: &PgPool) {
    let mut rx = maps.subscribe();
    loop {
        let map = rx.borrow_and_update().clone();
        match apply(db, &r.region, &map).await {
            Ok(changed) => {
                r.view_needed
                    .store(r.view.upcoming_load(), Ordering::Release);
                r.synced_version
                    .store(map.version.max(1), Ordering::Relaxed);
                if changed > 0 {
                    tracing::info!(region = %r.region, version = map.version, changed, "slot ownership synced");
                }
            }
            Err(e) => {
                tracing::warn!(region = %r.region, error = %e, "slot ownership sync failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Applies one map version; returns how many rows changed.
pub async fn apply(db: &PgPool, me: &str, map: &MapView) -> Result<usize, sqlx::Error> {
    if map.slots.is_empty() {
        return Ok(0);
    }
    let stored: HashMap<u16, pg::OwnRow> = pg::rows(db).await?.into_iter().collect();
    let mut fresh = Vec::new();
    let mut changed = 0;
    for s in &map.slots {
        if s.state != SlotState::Active {
            continue;
        }
        let slot = s.slot as u16;
        let epoch = s.epoch as i64;
        let row = stored.get(&slot);
        if s.region.as_str() == me {
            match row {
                None => fresh.push((slot, epoch)),
                Some(r) if r.epoch < epoch => {
                    tracing::info!(region = %me, slot, epoch, "activating a slot at a newer epoch");
                    changed += usize::from(pg::activate(db, slot, epoch).await?);
                }
                Some(_) => {}
            }
        } else if row.is_some_and(|r| r.active && r.epoch <= epoch) {
            tracing::info!(region = %me, slot, owner = %s.region, epoch, "freezing a slot owned elsewhere");
            pg::freeze(db, slot, epoch).await?;
            changed += 1;
        }
    }
    if !fresh.is_empty() {
        changed += pg::insert_new(db, &fresh).await? as usize;
    }
    Ok(changed)
}
