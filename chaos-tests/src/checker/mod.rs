//! The invariant checker, run against every region's Postgres at the end of
//! a scenario (and, for slot ownership, sampled during it):
//! - no single-use code used twice, no campaign over `total_limit`, no user
//!   over `per_user_limit` (across the union of all regions' rows), and no
//!   redemption of a campaign whose row is missing everywhere;
//! - one owner per slot, judged against the ownership [`History`]: a row
//!   held by a region for (slot, epoch) must be written by that epoch's
//!   owner before it lost the slot, and the slot's current owner must hold
//!   an identical copy of every row anyone holds for it; no slot is active
//!   in two regions at the end, nor at any sampled instant ([`Sampler`]);
//! - what the clients saw agrees with the stores ([`records`]).

pub mod history;
pub mod records;
pub mod rows;
pub mod sampler;
#[cfg(test)]
mod tests;

pub use history::{History, Move};
pub use sampler::Sampler;

use crate::workload::Record;
use rows::{Row, Stores};
use std::collections::{BTreeMap, HashMap};

/// What the checker saw, for the scenario's own assertions.
#[derive(Debug, Default)]
pub struct Summary {
    /// Active redemptions per campaign (union of regions, by id).
    pub active: BTreeMap<String, i64>,
    /// Every row, active or released (union of regions, by id).
    pub rows: usize,
    /// Acknowledgements that were replays (200).
    pub replays: usize,
}

/// Everything one check looks at.
pub struct Input<'a> {
    pub db_urls: &'a BTreeMap<String, String>,
    pub records: &'a [Record],
    pub moves: &'a [Move],
    /// Findings of the sampler that ran during the scenario.
    pub sampled: Vec<String>,
    pub seed: u64,
}

/// Every violation in what the stores hold and the clients saw, with the
/// union of rows (each from its slot's current owner).
pub fn judge(
    stores: &Stores,
    history: &History,
    records: &[Record],
) -> (Vec<String>, HashMap<String, Row>) {
    let mut bad = Vec::new();
    let union = ownership(stores, history, &mut bad);
    limits(stores, &union, &mut bad);
    bad.extend(records::judge(records, &union));
    for (slot, regions) in stores.active_slots.iter().filter(|(_, r)| r.len() > 1) {
        bad.push(format!("slot {slot} is active in {regions:?} at the end"));
    }
    (bad, union)
}

/// Checks every invariant; panics with the seed and every violation.
pub async fn check(input: Input<'_>) -> Summary {
    let stores = rows::read(input.db_urls).await;
    let history = History::new(input.moves);
    let (found, union) = judge(&stores, &history, input.records);
    let mut bad = input.sampled.clone();
    bad.extend(found);
    assert!(
        bad.is_empty(),
        "invariants violated (seed {}):\n{}",
        input.seed,
        bad.join("\n")
    );
    let mut summary = Summary {
        rows: union.len(),
        replays: input.records.iter().filter(|r| r.status == 200).count(),
        ..Default::default()
    };
    for row in union.values().filter(|r| r.active) {
        *summary.active.entry(row.campaign.clone()).or_default() += 1;
    }
    eprintln!(
        "checker verdict (seed {}): pass — {} rows over {} store(s), {} client records, {} ownership change(s)",
        input.seed,
        summary.rows,
        input.db_urls.len(),
        input.records.len(),
        input.moves.len()
    );
    summary
}

/// Judges every row against the history; returns the union of rows, each
/// taken from the slot's current owner.
fn ownership(stores: &Stores, history: &History, bad: &mut Vec<String>) -> HashMap<String, Row> {
    let mut union: HashMap<String, Row> = HashMap::new();
    for (region, rows) in &stores.rows {
        for (id, row) in rows {
            let (slot, epoch) = (row.slot, row.epoch);
            if !history.known_epoch(slot, epoch) {
                bad.push(format!(
                    "{region} holds {id} at slot {slot} epoch {epoch}, an epoch no move created"
                ));
            }
            let writer = history.owner(slot, epoch);
            if &writer != region && !history_has_copy(stores, &writer, id, row) {
                bad.push(format!(
                    "{region} holds {id} at slot {slot} epoch {epoch}, which {writer} owned and lacks"
                ));
            }
            if let Some(end) = history.tenure_end(slot, epoch) {
                if row.redeemed_at > end {
                    bad.push(format!(
                        "{region} wrote {id} at slot {slot} epoch {epoch} at {}, after that epoch ended at {end}",
                        row.redeemed_at
                    ));
                }
            }
            let last = history.last_owner(slot);
            let held = stores.rows.get(&last).and_then(|m| m.get(id));
            match held {
                Some(copy) if copy.same_redemption(row) => {}
                Some(_) => bad.push(format!("redemption {id} differs between {region} and {last}")),
                None => bad.push(format!(
                    "{region} holds {id} of slot {slot} (epoch {epoch}) but the slot's owner {last} lacks it"
                )),
            }
            if region == &last || !union.contains_key(id) {
                union.insert(id.clone(), row.clone());
            }
        }
    }
    union
}

fn history_has_copy(stores: &Stores, region: &str, id: &str, row: &Row) -> bool {
    stores
        .rows
        .get(region)
        .and_then(|m| m.get(id))
        .is_some_and(|c| c.same_redemption(row))
}

fn limits(stores: &Stores, union: &HashMap<String, Row>, bad: &mut Vec<String>) {
    let mut per_campaign: HashMap<&str, i64> = HashMap::new();
    let mut per_user: HashMap<(&str, &str), i64> = HashMap::new();
    let mut per_code: HashMap<&str, i64> = HashMap::new();
    for row in union.values().filter(|r| r.active) {
        *per_campaign.entry(&row.campaign).or_default() += 1;
        *per_user.entry((&row.campaign, &row.user)).or_default() += 1;
        if let Some(c) = &row.pool_code {
            *per_code.entry(c).or_default() += 1;
        }
    }
    for (c, n) in &per_campaign {
        match stores.limits.get(*c) {
            None => bad.push(format!(
                "campaign {c} has {n} active redemptions but no campaign row in any region"
            )),
            Some((Some(total), _)) if *n > i64::from(*total) => bad.push(format!(
                "campaign {c}: {n} active redemptions over total_limit {total}"
            )),
            Some(_) => {}
        }
    }
    for ((c, u), n) in &per_user {
        let limit = stores.limits.get(*c).map_or(1, |l| l.1);
        if *n > i64::from(limit) {
            bad.push(format!(
                "user {u} holds {n} uses of {c} (per_user_limit {limit})"
            ));
        }
    }
    for (code, n) in per_code.iter().filter(|(_, n)| **n > 1) {
        bad.push(format!("code {code} used {n} times"));
    }
}
