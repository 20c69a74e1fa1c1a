//! The one Postgres transaction of docs/architecture.md §4 step 6: fence, idempotency,
//! pick a seat / code / use, insert, mark the code, append the outbox.
//!
//! Nothing here reads-then-writes a counter: every pick is re-checked by a
//! unique index at insert (`ON CONFLICT DO NOTHING`), and a lost race just
//! picks again with fresher data.

use super::seats::SeatFrontier;
use super::{RedeemOutcome, RedeemRequest, Target};
use crate::domain::campaign::{Campaign, Kind};
use crate::error::{ApiError, ApiResult};
use crate::store::{outbox, redemptions, slots};
use coupon_core::{RedemptionId, Slot};
use rand::Rng;
use sqlx::{Connection, PgConnection, PgPool, Row};

/// Picks retried after losing a race before answering 503.
const MAX_PICKS: usize = 24;

/// Upper bound on a redeem transaction: an open one holds the events feed back.
const BEGIN_BOUNDED: &str = "BEGIN; SET LOCAL statement_timeout = '1500ms'";

/// `BEGIN`, the redeem's statement timeout and `slot`'s fence lock in one
/// round trip (one simple query; since Postgres 13 the timeout applies to
/// each of its statements, so to the lock's wait too). The transaction goes
/// on with [`slots::fence_read`].
pub(crate) fn begin_fenced(slot: u16) -> String {
    format!("{BEGIN_BOUNDED}; {}", slots::fence_lock_statement(slot))
}

/// What a faster claim engine already reserved; Postgres re-checks it.
#[derive(Debug, Default, Clone)]
pub struct Hint {
    pub seat_no: Option<i32>,
    pub pool_code: Option<String>,
}

pub async fn redeem_tx(
    db: &PgPool,
    seats: &SeatFrontier,
    req: &RedeemRequest,
    hint: Hint,
) -> ApiResult<RedeemOutcome> {
    if hint.seat_no.is_none() {
        if let Some(refused) = seats.refused_if_full(req).await {
            return Err(refused);
        }
    }
    redeem_on(&mut *db.acquire().await?, seats, req, hint).await
}

/// [`redeem_tx`] on a given connection. Whatever it answers, its
/// transaction has ended when it returns: committed, or rolled back
/// explicitly. A dropped transaction only queues its ROLLBACK until the
/// connection is next used (for a pooled one, when the pool takes it back,
/// on a task of its own), and until then the key's lock answers a retry
/// "in flight" (409) although this request already had its answer.
/// Test: api::key_locks.
pub async fn redeem_on(
    conn: &mut PgConnection,
    seats: &SeatFrontier,
    req: &RedeemRequest,
    hint: Hint,
) -> ApiResult<RedeemOutcome> {
    // Round trips are most of a winner's Postgres cost: the timeout and the
    // fence lock ride with BEGIN, the key's lock with the ownership read.
    let mut tx = conn.begin_with(begin_fenced(req.campaign.slot)).await?;
    match redeem_in(&mut tx, seats, req, hint).await {
        Ok(outcome) => {
            super::about_to_commit([req]).await;
            tx.commit().await?;
            Ok(outcome)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The transaction's statements, up to (not including) its commit.
async fn redeem_in(
    tx: &mut PgConnection,
    seats: &SeatFrontier,
    req: &RedeemRequest,
    hint: Hint,
) -> ApiResult<RedeemOutcome> {
    let c = &req.campaign;
    let slot = c.slot;
    let key_lock = req.key.lock_key(&c.campaign_id, &req.user);
    let (epoch, locked) = slots::fence_read(&mut *tx, slot, req.epoch, Some(key_lock)).await?;
    if locked != Some(true) {
        return Err(ApiError::IdempotencyInFlight);
    }
    if let Some(prior) =
        redemptions::by_key(&mut *tx, &c.campaign_id, &req.user, req.key.as_str()).await?
    {
        return replay(prior, &req.request_hash);
    }
    let mut hint = hint;
    for _ in 0..MAX_PICKS {
        let use_no = free_use(&mut *tx, c, &req.user)
            .await?
            .ok_or(ApiError::AlreadyRedeemed(
                "this user reached the campaign's per-user limit",
            ))?;
        let (seat_no, pool_code) = match &req.target {
            Target::Shared => match c.total_limit {
                Some(total) => {
                    let seat = match hint.seat_no.take() {
                        Some(s) => s,
                        None => seats
                            .pick(&mut *tx, c, total)
                            .await?
                            .ok_or(ApiError::Exhausted)?,
                    };
                    (Some(seat), None)
                }
                None => (None, None),
            },
            Target::Code { code, .. } => {
                lock_unused_code(&mut *tx, code).await?;
                (None, Some(code.clone()))
            }
            Target::PoolClaim => {
                // A code Redis handed out may be stale (used, or unknown
                // here): Postgres then pops another one itself (docs/architecture.md
                // §4 step 7), and the claim engine drops the stale one.
                let hinted = match hint.pool_code.take() {
                    Some(code) => match lock_unused_code(&mut *tx, &code).await {
                        Ok(()) => Some(code),
                        Err(ApiError::AlreadyRedeemed(_) | ApiError::UnknownCode) => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                let code = match hinted {
                    Some(code) => code,
                    None => pop_code(&mut *tx, &c.campaign_id)
                        .await?
                        .ok_or(ApiError::Exhausted)?,
                };
                (None, Some(code))
            }
        };
        let id = RedemptionId::random(
            Slot::new(slot).expect("stored slot"),
            &mut rand::thread_rng(),
        );
        let sql = format!(
            "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
             idempotency_key, request_hash, code, pool_code, seat_no, use_no, discount) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) \
             ON CONFLICT DO NOTHING RETURNING {}",
            redemptions::COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(&c.campaign_id)
            .bind(slot as i32)
            .bind(epoch)
            .bind(&req.user)
            .bind(&req.order_id)
            .bind(req.key.as_str())
            .bind(&req.request_hash)
            .bind(&req.code)
            .bind(&pool_code)
            .bind(seat_no)
            .bind(use_no)
            .bind(serde_json::to_value(&c.discount).expect("discount serializes"))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            // Lost a race on a seat, code or use number: pick again.
            if let Some(prior) =
                redemptions::by_key(&mut *tx, &c.campaign_id, &req.user, req.key.as_str()).await?
            {
                return replay(prior, &req.request_hash);
            }
            // Keep what we reserved unless it was the clash: a use-number
            // clash must not drop a seat or code that is still free.
            match (seat_no, &pool_code) {
                (Some(seat), _) if !seat_held(&mut *tx, c, seat).await? => {
                    hint.seat_no = Some(seat);
                }
                // The code row is locked by this transaction: still ours.
                (_, Some(code)) if req.target == Target::PoolClaim => {
                    hint.pool_code = Some(code.clone());
                }
                _ => {}
            }
            continue;
        };
        let redemption = redemptions::from_row(&row)?;
        if let Some(code) = &pool_code {
            sqlx::query("UPDATE codes SET used = true WHERE code = $1")
                .bind(code)
                .execute(&mut *tx)
                .await?;
        }
        let event_id = format!("{}:coupon.redeemed", redemption.redemption_id);
        let data = serde_json::to_value(&redemption).expect("redemption serializes");
        outbox::append(
            &mut *tx,
            &event_id,
            "coupon.redeemed",
            &c.campaign_id,
            &data,
        )
        .await?;
        let taken = pool_code.or_else(|| seat_no.map(|s| s.to_string()));
        return Ok(RedeemOutcome {
            redemption,
            replayed: false,
            taken,
        });
    }
    tracing::warn!(campaign = %c.campaign_id, "redeem lost {MAX_PICKS} races in a row");
    Err(ApiError::Unavailable { what: "postgres" })
}

pub(crate) fn replay(
    prior: redemptions::Redemption,
    request_hash: &str,
) -> ApiResult<RedeemOutcome> {
    if prior.request_hash != request_hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(RedeemOutcome {
        redemption: prior,
        replayed: true,
        taken: None,
    })
}

/// Lowest use number 1..`$3` user `$2` has free in campaign `$1`.
pub const FREE_USE: &str = "SELECT u FROM generate_series(1, $3::int) u WHERE NOT EXISTS ( \
       SELECT 1 FROM redemptions r WHERE r.campaign_id = $1 AND r.user_id = $2 \
       AND r.use_no = u AND r.released_at IS NULL) ORDER BY u LIMIT 1";

async fn free_use(conn: &mut PgConnection, c: &Campaign, user: &str) -> ApiResult<Option<i32>> {
    let row = sqlx::query(FREE_USE)
        .bind(&c.campaign_id)
        .bind(user)
        .bind(c.per_user_limit)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get(0))
        .transpose()
        .map_err(ApiError::from)
}

/// Whether an active redemption of campaign `$1` holds seat `$2`. Asked as
/// "the lowest seat from `$2` up": with statistics from before a launch
/// the plain `seat_no = $2` looked as cheap through another index that
/// starts with `campaign_id` (one row, Postgres thought), and Postgres read
/// the campaign's redemptions by `campaign_id` alone and filtered them (669
/// rows to answer for one seat in a 1,000-seat campaign); only the seat
/// index gives the order, so it wins whatever the statistics say.
/// Test: `plans::point_reads_read_a_few_rows_whatever_the_statistics`.
pub const SEAT_HELD: &str = "SELECT COALESCE((SELECT seat_no = $2 FROM redemptions \
       WHERE campaign_id = $1 AND seat_no >= $2 AND released_at IS NULL \
       ORDER BY seat_no LIMIT 1), false)";

async fn seat_held(conn: &mut PgConnection, c: &Campaign, seat: i32) -> ApiResult<bool> {
    Ok(sqlx::query_scalar(SEAT_HELD)
        .bind(&c.campaign_id)
        .bind(seat)
        .fetch_one(conn)
        .await?)
}

/// A free seat of `$2..=$3` of campaign `$1` that no racer is about to
/// insert, locked for this transaction; no row when there is none.
///
/// Free: no active redemption holds it. One ordered walk of the seat index
/// from `$2` lists the gaps between the seats taken (then the gap above
/// the highest), and the first seat of a gap whose lock is free wins.
/// Racers converge on the same gaps: without the lock, all but one waited
/// for the winner's commit at insert and started again, and near the end
/// of a 3,000-seat campaign at 50 connections some lost 24 races in a row
/// (a 503 with seats still free). The lock is `SKIP LOCKED` for rows that
/// do not exist yet; the unique index at insert still decides. Its key is
/// one 64-bit number, `hashtext(campaign_id)` above the seat: the
/// one-number form, so it can never meet the slot fence's two-number locks
/// (a lock space of its own in Postgres), and two campaigns that share a
/// hash only make each other skip a seat for the length of a transaction.
///
/// Not a probe per seat (`generate_series` and `NOT EXISTS`): that plan
/// depends on the statistics, and at a launch they say the campaign is
/// "one row", so Postgres answered each seat tried by reading every
/// redemption of the campaign (through another index that starts with
/// `campaign_id`, or an anti join over all of them, materialized): 63–214
/// ms instead of 0.6 ms for a pick of a 3,000-seat campaign's last seats,
/// which stalled the Postgres-only engine's tail in statement timeouts
/// (docs/benchmarks.md). Whatever plan Postgres takes for this query, it
/// reads the range once; a gap is tried for at most 256 seats (more racers
/// than that on one gap would skip it), so a long one is not listed whole. Test:
/// `plans::the_seat_probe_reads_the_campaign_once_whatever_the_statistics`.
pub const FREE_SEAT: &str = "SELECT s FROM ( \
       SELECT * FROM ( \
         SELECT prev + 1 AS lo, seat_no - 1 AS hi FROM ( \
           SELECT seat_no, lag(seat_no, 1, $2::int - 1) OVER (ORDER BY seat_no) AS prev \
           FROM redemptions WHERE campaign_id = $1 AND seat_no BETWEEN $2::int AND $3::int \
           AND released_at IS NULL) taken \
         WHERE seat_no > prev + 1 ORDER BY seat_no) inner_gaps \
       UNION ALL \
       SELECT coalesce(max(seat_no), $2::int - 1) + 1, $3::int FROM redemptions \
       WHERE campaign_id = $1 AND seat_no BETWEEN $2::int AND $3::int AND released_at IS NULL \
     ) gaps, LATERAL generate_series(gaps.lo, least(gaps.hi, gaps.lo + 255)) s \
     WHERE pg_try_advisory_xact_lock((hashtext($1)::bigint << 32) | s) LIMIT 1";

pub(crate) async fn free_seat_in(
    conn: &mut PgConnection,
    campaign_id: &str,
    from: i32,
    to: i32,
) -> ApiResult<Option<i32>> {
    Ok(sqlx::query_scalar(FREE_SEAT)
        .bind(campaign_id)
        .bind(from)
        .bind(to)
        .fetch_optional(conn)
        .await?)
}

/// Locks a named code row (both code paths lock the code before inserting,
/// so they cannot deadlock) and refuses it if already used.
async fn lock_unused_code(conn: &mut PgConnection, code: &str) -> ApiResult<()> {
    let used: Option<bool> =
        sqlx::query_scalar("SELECT used FROM codes WHERE code = $1 FOR UPDATE")
            .bind(code)
            .fetch_optional(conn)
            .await?;
    match used {
        None => Err(ApiError::UnknownCode),
        Some(true) => Err(ApiError::AlreadyRedeemed("this code was already used")),
        Some(false) => Ok(()),
    }
}

/// The next unused pool code, locked, from a random start over the partial
/// index of unused codes: racers spread over the pool instead of all walking
/// the same dead prefix, so claims stay fast at 90 % used.
pub async fn pop_code(conn: &mut PgConnection, campaign_id: &str) -> ApiResult<Option<String>> {
    let max: i64 =
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM codes WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_one(&mut *conn)
            .await?;
    if max == 0 {
        return Ok(None);
    }
    let start = rand::thread_rng().gen_range(1..=max);
    for (lo, hi) in [(start, max), (1, start - 1)] {
        if lo > hi {
            continue;
        }
        let code: Option<String> = sqlx::query_scalar(
            "SELECT code FROM codes WHERE campaign_id = $1 AND NOT used AND seq BETWEEN $2 AND $3 \
             ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(campaign_id)
        .bind(lo)
        .bind(hi)
        .fetch_optional(&mut *conn)
        .await?;
        if code.is_some() {
            return Ok(code);
        }
    }
    Ok(None)
}

/// Uses left, counted in Postgres.
pub async fn remaining(db: &PgPool, c: &Campaign) -> ApiResult<Option<i64>> {
    match c.kind {
        Kind::Shared => match c.total_limit {
            None => Ok(None),
            Some(total) => {
                let taken: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM redemptions WHERE campaign_id = $1 \
                     AND seat_no IS NOT NULL AND released_at IS NULL",
                )
                .bind(&c.campaign_id)
                .fetch_one(db)
                .await?;
                Ok(Some((total as i64 - taken).max(0)))
            }
        },
        Kind::Pool | Kind::Unique => {
            let unused: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM codes WHERE campaign_id = $1 AND NOT used",
            )
            .bind(&c.campaign_id)
            .fetch_one(db)
            .await?;
            Ok(Some(unused))
        }
    }
}

/// Whether a seat or code a claim engine reserved is still free in
/// Postgres, so giving it back cannot re-list one that is taken (a stale
/// Redis view handed it out). Seats: no active redemption holds it; codes:
/// unused.
pub async fn token_free(db: &PgPool, c: &Campaign, token: &str) -> ApiResult<bool> {
    match c.kind {
        Kind::Shared => {
            let Ok(seat) = token.parse::<i32>() else {
                return Ok(false);
            };
            let held = seat_held(&mut *db.acquire().await?, c, seat).await?;
            Ok(!held && seat >= 1 && c.total_limit.is_some_and(|t| seat <= t))
        }
        Kind::Pool | Kind::Unique => {
            let used: Option<bool> =
                sqlx::query_scalar("SELECT used FROM codes WHERE code = $1 AND campaign_id = $2")
                    .bind(token)
                    .bind(&c.campaign_id)
                    .fetch_optional(db)
                    .await?;
            Ok(used == Some(false))
        }
    }
}

/// Whether a redeem transaction holds this caller's key right now (its
/// advisory lock is held). Read from `pg_locks`, never by trying the lock:
/// a probe that took it, however briefly, could turn the original request
/// away with 409.
pub async fn key_locked(db: &PgPool, req: &RedeemRequest) -> ApiResult<bool> {
    let key = req.key.lock_key(&req.campaign.campaign_id, &req.user);
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid = (($1 >> 32) & 4294967295)::oid \
           AND objid = ($1 & 4294967295)::oid AND objsubid = 1)",
    )
    .bind(key)
    .fetch_one(db)
    .await?)
}

/// The caller's earlier redemption under this key, if any, without claiming:
/// used when the campaign gate refuses, so a retry of a success still replays.
pub async fn replay_only(
    db: &PgPool,
    req: &RedeemRequest,
) -> ApiResult<Option<redemptions::Redemption>> {
    let mut conn = db.acquire().await?;
    match redemptions::by_key(
        &mut conn,
        &req.campaign.campaign_id,
        &req.user,
        req.key.as_str(),
    )
    .await?
    {
        Some(prior) => replay(prior, &req.request_hash).map(|o| Some(o.redemption)),
        None => Ok(None),
    }
}
