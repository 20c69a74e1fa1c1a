//! The invariants a drill ends by checking, against the raft map and every
//! region's Postgres (docs/architecture.md §3): one active owner per slot,
//! at the map's epoch; nothing left mid-move; caps and single use hold in
//! the owning store; every moved slot's redemptions present at its owner.

use super::report::{Check, Verdict};
use coupon_node::ownership::mover::Stores;
use coupon_raft::map_view::MapView;
use sqlx::Row;
use std::collections::BTreeMap;

pub async fn judge(
    map: &MapView,
    stores: &Stores,
    goal: Check,
    moved: &[(u16, String, String)],
) -> anyhow::Result<Verdict> {
    let mut checks = vec![goal];
    checks.push(Check {
        name: "no move in flight".into(),
        ok: map.moves.is_empty(),
        detail: format!("{} unfinished move(s) in raft", map.moves.len()),
    });
    // slot → [(region, epoch)] of every store that holds it active.
    let mut active: BTreeMap<u16, Vec<(String, i64)>> = BTreeMap::new();
    for (region, db) in &stores.0 {
        let rows = sqlx::query("SELECT slot, epoch FROM slot_ownership WHERE state = 'active'")
            .fetch_all(db)
            .await?;
        for r in rows {
            let slot: i32 = r.try_get(0)?;
            active
                .entry(slot as u16)
                .or_default()
                .push((region.clone(), r.try_get(1)?));
        }
    }
    let mut wrong = Vec::new();
    for s in &map.slots {
        let want = vec![(s.region.to_string(), s.epoch as i64)];
        let have = active.remove(&(s.slot as u16)).unwrap_or_default();
        if have != want {
            wrong.push(format!("slot {}: map {want:?}, stores {have:?}", s.slot));
        }
    }
    checks.push(Check {
        name: "one active owner per slot, at the map's epoch".into(),
        ok: wrong.is_empty(),
        detail: summary(&wrong, map.slots.len()),
    });
    let mut broken = Vec::new();
    for (region, db) in &stores.0 {
        let over: i64 = sqlx::query_scalar(CAPS).fetch_one(db).await?;
        if over > 0 {
            broken.push(format!(
                "{region}: {over} campaign(s) or user(s) over a cap"
            ));
        }
        let twice: i64 = sqlx::query_scalar(TWICE).fetch_one(db).await?;
        if twice > 0 {
            broken.push(format!("{region}: {twice} code(s) used twice"));
        }
    }
    checks.push(Check {
        name: "caps and single use hold in every store".into(),
        ok: broken.is_empty(),
        detail: summary(&broken, stores.0.len()),
    });
    let mut missing = Vec::new();
    for (slot, from, to) in moved {
        let (Some(a), Some(b)) = (stores.0.get(from), stores.0.get(to)) else {
            continue;
        };
        let q = "SELECT count(*) FROM redemptions WHERE slot = $1";
        let old: i64 = sqlx::query_scalar(q)
            .bind(i32::from(*slot))
            .fetch_one(a)
            .await?;
        let new: i64 = sqlx::query_scalar(q)
            .bind(i32::from(*slot))
            .fetch_one(b)
            .await?;
        if new < old {
            missing.push(format!("slot {slot}: {from} held {old}, {to} holds {new}"));
        }
    }
    checks.push(Check {
        name: "every moved slot's redemptions at its new owner".into(),
        ok: missing.is_empty(),
        detail: summary(&missing, moved.len()),
    });
    let pass = checks.iter().all(|c| c.ok);
    Ok(Verdict {
        verdict: if pass { "pass" } else { "fail" }.into(),
        checks,
    })
}

/// Campaigns over their total cap, plus users over their per-user cap.
const CAPS: &str = "SELECT \
    (SELECT count(*) FROM campaigns c WHERE c.total_limit IS NOT NULL AND \
       (SELECT count(*) FROM redemptions r WHERE r.campaign_id = c.campaign_id \
          AND r.released_at IS NULL) > c.total_limit) + \
    (SELECT count(*) FROM (SELECT 1 FROM redemptions r JOIN campaigns c USING (campaign_id) \
       WHERE r.released_at IS NULL GROUP BY r.campaign_id, r.user_id, c.per_user_limit \
       HAVING count(*) > c.per_user_limit) t)";

const TWICE: &str = "SELECT count(*) FROM (SELECT 1 FROM redemptions \
    WHERE pool_code IS NOT NULL AND released_at IS NULL \
    GROUP BY campaign_id, pool_code HAVING count(*) > 1) t";

fn summary(found: &[String], of: usize) -> String {
    match found.len() {
        0 => format!("ok across {of}"),
        n => format!(
            "{n} found: {}",
            found.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ),
    }
}
