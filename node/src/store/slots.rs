//! Slot ownership in this region's Postgres and the fencing check (§3.4).

use crate::error::ApiError;
use crate::ownership::pg::SLOT_LOCK_CLASS;
use sqlx::{PgConnection, PgPool, Row};

/// First start of a standalone region: own `slots` at epoch 1.
pub async fn bootstrap(db: &PgPool, slots: &[u16]) -> Result<u64, ApiError> {
    let slots: Vec<i32> = slots.iter().map(|s| *s as i32).collect();
    let res = sqlx::query(
        "INSERT INTO slot_ownership (slot, epoch, state) \
         SELECT s, 1, 'active' FROM UNNEST($1::int[]) s \
         WHERE NOT EXISTS (SELECT 1 FROM slot_ownership) ON CONFLICT DO NOTHING",
    )
    .bind(&slots)
    .execute(db)
    .await?;
    Ok(res.rows_affected())
}

/// Inside a state-changing transaction: hold the slot's shared lock until
/// commit and prove the slot is active here (at `epoch`, when the caller named
/// one). A freeze takes the exclusive lock, so it waits for us and we see it.
pub async fn fence(
    conn: &mut PgConnection,
    slot: u16,
    epoch: Option<i64>,
) -> Result<i64, ApiError> {
    let lock = fence_lock_statement(slot);
    sqlx::Executor::execute(&mut *conn, lock.as_str()).await?;
    fence_read(conn, slot, epoch, None).await.map(|(e, _)| e)
}

/// The statement that takes `slot`'s fence lock (shared), for a caller that
/// sends it with its `BEGIN` (one round trip fewer per redeem) and follows
/// with [`fence_read`].
pub fn fence_lock_statement(slot: u16) -> String {
    format!("SELECT pg_advisory_xact_lock_shared({SLOT_LOCK_CLASS}, {slot})")
}

/// The second half of [`fence`], after the fence lock was taken by an
/// earlier statement of this transaction ([`fence_lock_statement`]); with
/// `key_lock`, it also tries, in the same round trip, the transaction-scoped
/// advisory lock of a redeem's idempotency key: Some(false) when another
/// transaction holds it. Reads that the key lock protects must come in
/// later statements (a later snapshot).
pub async fn fence_read(
    conn: &mut PgConnection,
    slot: u16,
    epoch: Option<i64>,
    key_lock: Option<i64>,
) -> Result<(i64, Option<bool>), ApiError> {
    // A statement after the lock: its snapshot sees any move that took the
    // exclusive lock before us.
    let row = sqlx::query(
        "SELECT epoch, state, \
         CASE WHEN $2::bigint IS NULL THEN NULL ELSE pg_try_advisory_xact_lock($2) END \
         FROM slot_ownership WHERE slot = $1",
    )
    .bind(slot as i32)
    .bind(key_lock)
    .fetch_optional(&mut *conn)
    .await?;
    let misdirected = |known: Option<i64>| ApiError::Misdirected {
        slot,
        owner: None,
        epoch: known,
    };
    let Some(row) = row else {
        return Err(misdirected(None));
    };
    let (have, state, locked): (i64, String, Option<bool>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if state != "active" || epoch.is_some_and(|e| e != have) {
        return Err(misdirected(Some(have)));
    }
    Ok((have, locked))
}

/// The slot an id (campaign, job) names; ids are validated before they are
/// stored, so a bad one is an internal error.
pub fn of_id(id: &str) -> Result<u16, ApiError> {
    coupon_core::CampaignId::parse(id)
        .map(|c| c.slot().get())
        .or_else(|_| coupon_core::JobId::parse(id).map(|j| j.slot().get()))
        .map_err(|_| ApiError::Internal(format!("id {id} names no slot")))
}
