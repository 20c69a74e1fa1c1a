//! The invariant checker (DESIGN.md §3), run against every region's
//! Postgres at the end of a scenario:
//! - no single-use code used twice, no campaign over `total_limit`, no user
//!   over `per_user_limit` (across the union of all regions' rows);
//! - every acknowledged (201) redemption has its row;
//! - one owner per slot: no slot active in two regions, and every row
//!   committed at (slot, epoch) outside that epoch's owner is a copy of a row
//!   the owner has (moves copy rows; nobody else may commit).

use crate::harness::REGIONS;
use crate::workload::Record;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A completed slot move: from `new_epoch` on, `to` owns `slot`.
#[derive(Debug, Clone)]
pub struct Move {
    pub slot: u16,
    pub to: String,
    pub new_epoch: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct Row_ {
    campaign: String,
    slot: i32,
    epoch: i64,
    user: String,
    order: String,
    pool_code: Option<String>,
    active: bool,
}

/// What the checker saw, for the scenario's own assertions.
#[derive(Debug, Default)]
pub struct Summary {
    /// Active redemptions per campaign (union of regions, by id).
    pub active: BTreeMap<String, i64>,
    pub rows: usize,
}

/// Owner of `(slot, epoch)` given the initial spread and the moves.
fn owner(slot: i32, epoch: i64, moves: &[Move]) -> String {
    moves
        .iter()
        .find(|m| i32::from(m.slot) == slot && m.new_epoch == epoch)
        .map_or_else(
            || REGIONS[slot as usize % REGIONS.len()].to_owned(),
            |m| m.to.clone(),
        )
}

/// Checks every invariant; panics with the seed and every violation.
pub async fn check(
    db_urls: &BTreeMap<String, String>,
    records: &[Record],
    moves: &[Move],
    seed: u64,
) -> Summary {
    let mut per_region: BTreeMap<String, HashMap<String, Row_>> = BTreeMap::new();
    let mut limits: HashMap<String, (Option<i32>, i32)> = HashMap::new();
    let mut active_slots: HashMap<i32, Vec<String>> = HashMap::new();
    for (region, url) in db_urls {
        let db = PgPool::connect(url).await.expect("checker connects");
        let rows = sqlx::query("SELECT redemption_id, campaign_id, slot, epoch, user_id, order_id, pool_code, released_at IS NULL FROM redemptions")
            .fetch_all(&db).await.expect("read redemptions");
        let mut m = HashMap::new();
        for r in rows {
            m.insert(
                r.get::<String, _>(0),
                Row_ {
                    campaign: r.get(1),
                    slot: r.get(2),
                    epoch: r.get(3),
                    user: r.get(4),
                    order: r.get(5),
                    pool_code: r.get(6),
                    active: r.get(7),
                },
            );
        }
        per_region.insert(region.clone(), m);
        for r in sqlx::query("SELECT campaign_id, total_limit, per_user_limit FROM campaigns")
            .fetch_all(&db)
            .await
            .expect("campaigns")
        {
            limits.insert(r.get(0), (r.get(1), r.get(2)));
        }
        for r in sqlx::query("SELECT slot FROM slot_ownership WHERE state = 'active'")
            .fetch_all(&db)
            .await
            .expect("slots")
        {
            active_slots
                .entry(r.get(0))
                .or_default()
                .push(region.clone());
        }
        db.close().await;
    }
    let mut bad = Vec::new();
    let mut union: HashMap<String, Row_> = HashMap::new();
    for (region, rows) in &per_region {
        for (id, row) in rows {
            let own = owner(row.slot, row.epoch, moves);
            if &own != region {
                let copy = per_region.get(&own).and_then(|o| o.get(id));
                if copy.map(|c| (&c.user, &c.order, &c.campaign))
                    != Some((&row.user, &row.order, &row.campaign))
                {
                    bad.push(format!(
                        "{region} holds {id} at slot {} epoch {} owned by {own}, which lacks it",
                        row.slot, row.epoch
                    ));
                }
            }
            match union.get(id) {
                Some(prev) if (&prev.user, &prev.order) != (&row.user, &row.order) => {
                    bad.push(format!("redemption {id} differs between regions"))
                }
                // The owner's copy decides `active` (a release after a move).
                _ if own == *region || !union.contains_key(id) => {
                    union.insert(id.clone(), row.clone());
                }
                _ => {}
            }
        }
    }
    let mut summary = Summary {
        rows: union.len(),
        ..Default::default()
    };
    let mut per_user: HashMap<(String, String), i64> = HashMap::new();
    let mut per_code: HashMap<String, i64> = HashMap::new();
    for row in union.values().filter(|r| r.active) {
        *summary.active.entry(row.campaign.clone()).or_default() += 1;
        *per_user
            .entry((row.campaign.clone(), row.user.clone()))
            .or_default() += 1;
        if let Some(c) = &row.pool_code {
            *per_code.entry(c.clone()).or_default() += 1;
        }
    }
    for (c, n) in &summary.active {
        if let Some((Some(total), _)) = limits.get(c) {
            if *n > i64::from(*total) {
                bad.push(format!(
                    "campaign {c}: {n} active redemptions over total_limit {total}"
                ));
            }
        }
    }
    for ((c, u), n) in &per_user {
        let limit = limits.get(c).map_or(1, |l| l.1);
        if *n > i64::from(limit) {
            bad.push(format!(
                "user {u} holds {n} uses of {c} (per_user_limit {limit})"
            ));
        }
    }
    for (code, n) in per_code.iter().filter(|(_, n)| **n > 1) {
        bad.push(format!("code {code} used {n} times"));
    }
    let mut acked = HashSet::new();
    for r in records
        .iter()
        .filter(|r| r.status == 201 || r.status == 200)
    {
        match r
            .redemption_id
            .as_ref()
            .and_then(|id| union.get(id).map(|row| (id, row)))
        {
            Some((id, row)) if row.user == r.user => {
                acked.insert(id.clone());
            }
            _ => bad.push(format!(
                "acknowledged redemption of {} by {} (via {}) has no row",
                r.code, r.user, r.via
            )),
        }
    }
    for (slot, regions) in active_slots.iter().filter(|(_, r)| r.len() > 1) {
        bad.push(format!("slot {slot} is active in {regions:?}"));
    }
    assert!(
        bad.is_empty(),
        "invariants violated (seed {seed}):\n{}",
        bad.join("\n")
    );
    summary
}
