//! What a node does when a slot becomes its own or stops being so
//! (docs/architecture.md §7): its caches must describe the slot's data for
//! this tenure, never a previous one.
//!
//! - Redis: a hash `coupon:slot-tenure` records, per slot, the epoch this
//!   Redis's burst state belongs to. Any slot whose recorded tenure is not
//!   the active epoch here has its campaigns' keys deleted (the claim
//!   engine rebuilds them from Postgres, the `ready` marker being gone);
//!   a slot no longer active here loses its keys and its entry. Run on every
//!   change and at start, so a node that was down while its slot moved away
//!   and back cannot serve from the old tenure's state.
//! - Campaign cache: the slot's campaigns are forgotten; their Redis state
//!   is then built from Postgres in the background (a first request that
//!   comes sooner builds it under the same seed lock).
//! - Bloom filter: the slot's codes are fed in (they were copied into
//!   Postgres by the mover, which announces nothing to this node).
//! - Jobs: a generation job of the slot still `running` here was cut off by
//!   the move (its writer was fenced out on the old owner): it is marked
//!   `failed` with what it had done, so nobody waits on it for ever.
//!
//! The slot stays *warming* (503) until the Redis step succeeded.

use super::view::{self, OwnedSlots};
use crate::state::AppState;
use coupon_core::CampaignId;
use redis::AsyncCommands;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Per slot: the epoch this Redis's burst state was built for.
pub const TENURE_KEY: &str = "coupon:slot-tenure";
const RETRY: Duration = Duration::from_millis(300);
/// Keys deleted per DEL.
const DEL_CHUNK: usize = 500;

/// Longest the start waits for the first warm-up (Redis answering).
const FIRST_SETTLE: Duration = Duration::from_secs(5);

/// Loads the view, brings Redis to its tenure (waiting up to
/// [`FIRST_SETTLE`], so a started node serves at once), then follows every
/// ownership change in the background.
pub async fn start(state: &AppState) -> Result<(), sqlx::Error> {
    view::load(state.owned(), state.db()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(view::follow(state.owned().clone(), state.db().clone(), tx));
    let first = {
        let state = state.clone();
        tokio::spawn(async move { settle(&state, &BTreeSet::new()).await })
    };
    let _ = tokio::time::timeout(FIRST_SETTLE, first).await;
    let state = state.clone();
    tokio::spawn(async move {
        while let Some(mut changed) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                changed.extend(more);
            }
            let gained: BTreeSet<u16> = changed
                .iter()
                .filter(|c| c.new_tenure)
                .map(|c| c.slot)
                .collect();
            for c in &changed {
                state.campaigns().forget_slot(c.slot);
            }
            settle(&state, &gained).await;
        }
    });
    Ok(())
}

/// Brings Redis to the tenure the view shows (retrying until it can), then
/// runs the gained slots' Postgres-side steps and marks them warm.
async fn settle(state: &AppState, gained: &BTreeSet<u16>) {
    let view = state.owned();
    loop {
        match redis_to_tenure(state, view).await {
            Ok(wiped) => {
                if !wiped.is_empty() {
                    tracing::info!(region = %state.region(), slots = ?wiped, "burst state of other tenures dropped");
                }
                break;
            }
            Err(e) => {
                tracing::warn!(region = %state.region(), error = %e, "cannot bring redis to the slots' tenure; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    for &slot in gained {
        let Some(h) = view.held(slot).filter(|h| h.active) else {
            continue;
        };
        if let Err(e) = feed_bloom(state, slot).await {
            // The filter stops trusting "no" until its next full load.
            tracing::warn!(slot, error = %e, "could not feed the moved codes to the bloom filter");
            state.codes().distrust();
        }
        match fail_cut_jobs(state, slot).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                slot,
                jobs = n,
                "generation jobs cut off by the move marked failed"
            ),
            Err(e) => tracing::warn!(slot, error = %e, "could not mark cut-off jobs failed"),
        }
        view.set_warm(slot, h.epoch);
        tracing::info!(region = %state.region(), slot, epoch = h.epoch, "slot warm: serving it");
        tokio::spawn(seed_slot(state.clone(), slot));
    }
    // Slots warm at start, or that lost their row meanwhile, need nothing more.
    for slot in 0..view::SLOTS as u16 {
        if let Some(h) = view
            .held(slot)
            .filter(|h| h.active && !gained.contains(&slot))
        {
            view.set_warm(slot, h.epoch);
        }
    }
}

/// Deletes the burst state of every slot whose tenure in Redis is not the
/// active epoch here; returns the slots wiped.
async fn redis_to_tenure(
    state: &AppState,
    view: &OwnedSlots,
) -> Result<Vec<u16>, redis::RedisError> {
    let mut r = state.redis();
    let recorded: BTreeMap<u16, i64> = r.hgetall(TENURE_KEY).await?;
    let want: BTreeMap<u16, i64> = (0..view::SLOTS as u16)
        .filter_map(|s| view.held(s).filter(|h| h.active).map(|h| (s, h.epoch)))
        .collect();
    let stale: BTreeSet<u16> = recorded
        .iter()
        .filter(|(s, e)| want.get(s) != Some(e))
        .map(|(s, _)| *s)
        .chain(want.keys().filter(|s| !recorded.contains_key(s)).copied())
        .collect();
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let mut iter: redis::AsyncIter<String> = r.scan_match("c:{*").await?;
    let mut doomed = Vec::new();
    while let Some(key) = iter.next_item().await {
        if key_slot(&key).is_some_and(|s| stale.contains(&s)) {
            doomed.push(key);
        }
    }
    drop(iter);
    for chunk in doomed.chunks(DEL_CHUNK) {
        let _: () = r.del(chunk).await?;
    }
    let mut p = redis::pipe();
    for s in &stale {
        match want.get(s) {
            Some(e) => p.hset(TENURE_KEY, s, e).ignore(),
            None => p.hdel(TENURE_KEY, s).ignore(),
        };
    }
    let _: () = p.query_async(&mut r).await?;
    Ok(stale.into_iter().collect())
}

/// The slot of a campaign key `c:{<campaign id>}:…`.
fn key_slot(key: &str) -> Option<u16> {
    let id = key.strip_prefix("c:{")?.split('}').next()?;
    CampaignId::parse(id).ok().map(|c| c.slot().get())
}

/// Builds the Redis burst state of the slot's campaigns from Postgres now,
/// rather than on each campaign's first request (which would take the
/// Postgres-only path meanwhile). In the background: a big pool takes a
/// while, and a request that comes first seeds under the same lock.
async fn seed_slot(state: AppState, slot: u16) {
    let ids: Vec<String> =
        match sqlx::query_scalar("SELECT campaign_id FROM campaigns WHERE slot = $1")
            .bind(i32::from(slot))
            .fetch_all(state.db())
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(slot, error = %e, "could not list the moved slot's campaigns");
                return;
            }
        };
    for id in ids {
        match state.campaigns().by_id(state.db(), &id).await {
            Ok(Some(c)) => {
                if let Err(e) = state.claim().seed(&c).await {
                    tracing::warn!(slot, campaign = %id, error = %e, "could not seed a moved campaign; its first request will");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(slot, campaign = %id, error = %e, "could not read a moved campaign")
            }
        }
    }
}

async fn feed_bloom(state: &AppState, slot: u16) -> Result<(), sqlx::Error> {
    let mut after = String::new();
    loop {
        let page: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM codes WHERE campaign_id IN \
             (SELECT campaign_id FROM campaigns WHERE slot = $1) AND code > $2 \
             ORDER BY code LIMIT 50000",
        )
        .bind(i32::from(slot))
        .bind(&after)
        .fetch_all(state.db())
        .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.clone();
        // A moved slot can hold millions of codes: let lease renewal and
        // requests run between chunks.
        state.codes().insert_page(&page).await;
    }
}

async fn fail_cut_jobs(state: &AppState, slot: u16) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'failed', updated_at = now(), \
         error = 'interrupted by a slot move (progress recorded: ' || done || ' of ' || total || \
                 '); the campaign now holds ' || \
                 (SELECT count(*) FROM codes c WHERE c.campaign_id = jobs.campaign_id) || \
                 ' codes, all valid; generate the rest again' \
         WHERE state = 'running' AND campaign_id IN \
         (SELECT campaign_id FROM campaigns WHERE slot = $1)",
    )
    .bind(i32::from(slot))
    .execute(state.db())
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn campaign_keys_name_their_slot_and_others_do_not() {
        assert_eq!(key_slot("c:{not-an-id}:ready"), None);
        assert_eq!(key_slot("rl:user:x"), None);
    }
}
