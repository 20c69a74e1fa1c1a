//! Build a campaign's Redis state from Postgres (on creation, after a flush
//! or a Redis replacement, and when the reconciler finds drift). Big pools
//! are streamed in batches; the new state is published atomically.

use super::keys::{parse_member, Keys};
use crate::domain::campaign::{Campaign, Kind};
use crate::error::ApiResult;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};

/// Members per SADD / HSET and rows per Postgres page while seeding.
pub const SEED_BATCH: usize = 10_000;
/// A seeder that died holding the lock releases it after this long.
const SEED_LOCK_MS: u64 = 120_000;

#[derive(Debug, Default, serde::Serialize)]
pub struct Seeded {
    pub free: u64,
    pub users: u64,
    /// False when another process is seeding this campaign right now.
    pub done: bool,
}

pub async fn seed(db: &PgPool, redis: &ConnectionManager, c: &Campaign) -> ApiResult<Seeded> {
    let k = Keys::new(&c.campaign_id);
    let mut r = redis.clone();
    // The lock carries its owner's token: a seeder that outlived the lock's
    // expiry must not delete the lock a later seeder now holds.
    let token = format!("{:032x}", rand::random::<u128>());
    let locked: bool = redis::cmd("SET")
        .arg(k.seed_lock())
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(SEED_LOCK_MS)
        .query_async::<Option<String>>(&mut r)
        .await?
        .is_some();
    if !locked {
        return Ok(Seeded::default());
    }
    let result = build(db, &mut r, c, &k).await;
    let _: i64 = super::scripts::scripts()
        .unlock
        .key(k.seed_lock())
        .arg(&token)
        .invoke_async(&mut r)
        .await?;
    result
}

async fn build(
    db: &PgPool,
    r: &mut ConnectionManager,
    c: &Campaign,
    k: &Keys,
) -> ApiResult<Seeded> {
    // Claims go to the Postgres-only path while the state is rebuilt.
    let _: () = r.del(k.ready()).await?;
    let members: Vec<String> = r.zrange(k.claims(), 0, -1).await?;
    let claimed: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| parse_member(m).map(|(t, _, u)| (t.to_owned(), u.to_owned())))
        .collect();
    let claimed_tokens: HashSet<&str> = claimed.iter().map(|(t, _)| t.as_str()).collect();
    let (tmp_free, tmp_users) = (k.tmp("free"), k.tmp("users"));
    let _: () = r.del(&[&tmp_free, &tmp_users]).await?;
    let mut free = 0u64;
    let mut next: Option<i64> = None;
    let mut batch: Vec<String> = Vec::with_capacity(SEED_BATCH);
    match (c.kind, c.total_limit) {
        (Kind::Shared, None) => {}
        (Kind::Shared, Some(total)) => {
            // Only seats up to the highest one in use are listed; `next`
            // stands for every seat above it, so this is bounded by the
            // seats handed out, never by the cap.
            let taken: HashSet<i32> = sqlx::query_scalar(
                "SELECT seat_no FROM redemptions WHERE campaign_id = $1 AND seat_no IS NOT NULL AND released_at IS NULL",
            )
            .bind(&c.campaign_id)
            .fetch_all(db)
            .await?
            .into_iter()
            .collect();
            let claimed_seats = claimed_tokens.iter().filter_map(|t| t.parse::<i32>().ok());
            let top = taken
                .iter()
                .copied()
                .chain(claimed_seats)
                .max()
                .unwrap_or(0)
                .min(total);
            for seat in 1..=top {
                let s = seat.to_string();
                if !taken.contains(&seat) && !claimed_tokens.contains(s.as_str()) {
                    batch.push(s);
                }
                if batch.len() == SEED_BATCH {
                    free += flush_set(r, &tmp_free, &mut batch).await?;
                }
            }
            next = Some(top as i64 + 1);
            free += (total - top) as u64;
        }
        (Kind::Pool | Kind::Unique, _) => {
            let mut after = 0i64;
            loop {
                let rows = sqlx::query(
                    "SELECT seq, code FROM codes WHERE campaign_id = $1 AND NOT used AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(&c.campaign_id)
                .bind(after)
                .bind(SEED_BATCH as i64)
                .fetch_all(db)
                .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get(0)?;
                for row in &rows {
                    let code: String = row.try_get(1)?;
                    if !claimed_tokens.contains(code.as_str()) {
                        batch.push(code);
                    }
                }
                free += flush_set(r, &tmp_free, &mut batch).await?;
            }
        }
    }
    free += flush_set(r, &tmp_free, &mut batch).await?;
    let mut uses: HashMap<String, i64> = sqlx::query(
        "SELECT user_id, count(*) FROM redemptions WHERE campaign_id = $1 AND released_at IS NULL GROUP BY user_id",
    )
    .bind(&c.campaign_id)
    .fetch_all(db)
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    for (_, user) in &claimed {
        *uses.entry(user.clone()).or_default() += 1;
    }
    let users = uses.len() as u64;
    let pairs: Vec<(String, i64)> = uses.into_iter().collect();
    for chunk in pairs.chunks(SEED_BATCH) {
        let _: () = r.hset_multiple(&tmp_users, chunk).await?;
    }
    let mut publish = redis::pipe();
    publish
        .atomic()
        .del(k.free())
        .ignore()
        .del(k.users())
        .ignore();
    let listed: bool = r.exists(&tmp_free).await?;
    if listed {
        publish.rename(&tmp_free, k.free()).ignore();
    }
    publish.del(k.next()).ignore();
    if let Some(n) = next {
        publish.set(k.next(), n).ignore();
    }
    if users > 0 {
        publish.rename(&tmp_users, k.users()).ignore();
    }
    // The pause state comes from Postgres now, not from the caller's copy of
    // the campaign (which may be a cached or remembered one), and is read
    // again after publishing: a pause committed meanwhile wins.
    let paused = paused_in_postgres(db, c).await?;
    if paused {
        publish.set(k.paused(), 1).ignore();
    } else {
        publish.del(k.paused()).ignore();
    }
    publish.set(k.ready(), 1).ignore();
    let _: () = publish.query_async(r).await?;
    if paused_in_postgres(db, c).await? != paused {
        let _: () = if paused {
            r.del(k.paused()).await?
        } else {
            r.set(k.paused(), 1).await?
        };
    }
    Ok(Seeded {
        free,
        users,
        done: true,
    })
}

async fn paused_in_postgres(db: &PgPool, c: &Campaign) -> ApiResult<bool> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM campaigns WHERE campaign_id = $1")
            .bind(&c.campaign_id)
            .fetch_optional(db)
            .await?;
    Ok(status.as_deref() == Some("paused"))
}

async fn flush_set(
    r: &mut ConnectionManager,
    key: &str,
    batch: &mut Vec<String>,
) -> ApiResult<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let n: u64 = r.sadd(key, &batch[..]).await?;
    batch.clear();
    Ok(n)
}
