//! What the clients saw, held against what the stores hold:
//! - every acknowledgement (201, or 200 replay) has its row, for that user
//!   and key, and every acknowledgement of one key names the same row;
//! - a retry of a key whose redemption committed is answered with that
//!   redemption (200 replay), never a refusal such as 410 `exhausted`;
//! - every row was acknowledged or asked for by a request that got no
//!   definitive answer: no write lands while the client is told it failed.

use super::rows::Row;
use crate::workload::Record;
use std::collections::HashMap;

/// Answers a retry of a committed key may get besides the redemption itself:
/// still no definitive answer, or the original still in flight.
fn allowed_for_retry(r: &Record) -> bool {
    r.ambiguous() || r.reason.as_deref() == Some("idempotency_in_flight")
}

pub fn judge(records: &[Record], union: &HashMap<String, Row>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut by_key: HashMap<(&str, &str), Vec<(&String, &Row)>> = HashMap::new();
    for (id, row) in union {
        by_key
            .entry((row.user.as_str(), row.key.as_str()))
            .or_default()
            .push((id, row));
    }
    let mut asked: HashMap<(&str, &str), Vec<&Record>> = HashMap::new();
    for r in records {
        asked
            .entry((r.user.as_str(), r.key.as_str()))
            .or_default()
            .push(r);
    }
    for r in records.iter().filter(|r| r.acknowledged()) {
        let row = r.redemption_id.as_ref().and_then(|id| union.get(id));
        match row {
            Some(row) if row.user == r.user && row.key == r.key => {}
            _ => bad.push(format!(
                "acknowledged ({}) redemption {:?} of {} by {} key {} (via {}) has no row",
                r.status, r.redemption_id, r.code, r.user, r.key, r.via
            )),
        }
    }
    for ((user, key), recs) in &asked {
        let mut ids: Vec<&String> = recs
            .iter()
            .filter(|r| r.acknowledged())
            .filter_map(|r| r.redemption_id.as_ref())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() > 1 {
            bad.push(format!("key {key} of {user} acknowledged as {ids:?}"));
        }
        let Some(rows) = by_key.get(&(*user, *key)) else {
            continue;
        };
        for r in recs {
            let retry = recs
                .iter()
                .any(|o| !std::ptr::eq(*o, *r) && o.finished_at < r.started_at);
            if !retry || r.acknowledged() || allowed_for_retry(r) {
                continue;
            }
            bad.push(format!(
                "retry of committed key {key} of {user} ({}) answered {} {:?} via {} instead of a replay",
                rows[0].0, r.status, r.reason, r.via
            ));
        }
    }
    for ((user, key), rows) in &by_key {
        let told = asked
            .get(&(*user, *key))
            .is_some_and(|recs| recs.iter().any(|r| r.acknowledged() || r.ambiguous()));
        if !told {
            for (id, row) in rows {
                bad.push(format!(
                    "row {id} ({user} key {key}, campaign {}) was never acknowledged nor asked for ambiguously",
                    row.campaign
                ));
            }
        }
    }
    bad
}
