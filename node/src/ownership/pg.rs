//! `slot_ownership` writes made by the map sync and the mover. The redeem
//! transaction holds the slot's *shared* advisory lock (`store::slots::fence`);
//! these take the *exclusive* one, so a freeze waits out in-flight commits.

use sqlx::{PgConnection, PgPool, Row};

/// Same lock class as `store::slots` (two-int advisory lock form).
pub const SLOT_LOCK_CLASS: i32 = 0x5107;
/// Longest wait for in-flight transactions before a freeze gives up.
const FREEZE_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// One row of `slot_ownership`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnRow {
    pub epoch: i64,
    pub active: bool,
}

pub async fn rows(db: &PgPool) -> Result<Vec<(u16, OwnRow)>, sqlx::Error> {
    let rows = sqlx::query("SELECT slot, epoch, state FROM slot_ownership")
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            let slot: i32 = r.try_get(0)?;
            let state: String = r.try_get(2)?;
            Ok((
                slot as u16,
                OwnRow {
                    epoch: r.try_get(1)?,
                    active: state == "active",
                },
            ))
        })
        .collect()
}

async fn lock(conn: &mut PgConnection, slot: u16) -> Result<(), sqlx::Error> {
    sqlx::query(FREEZE_LOCK_TIMEOUT).execute(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SLOT_LOCK_CLASS)
        .bind(slot as i32)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Freezes `slot` once no transaction holds it, unless its stored epoch is
/// newer than `max_epoch` (a stale map never freezes a newer activation).
/// Returns the epoch of the frozen row.
pub async fn freeze(db: &PgPool, slot: u16, max_epoch: i64) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = db.begin().await?;
    lock(&mut tx, slot).await?;
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE slot_ownership SET state = 'frozen', updated_at = now() \
         WHERE slot = $1 AND epoch <= $2 RETURNING epoch",
    )
    .bind(slot as i32)
    .bind(max_epoch)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(epoch)
}

/// Makes `slot` active at `epoch` unless a newer epoch is already stored.
/// Returns whether the row is now active at `epoch`.
pub async fn activate(db: &PgPool, slot: u16, epoch: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    lock(&mut tx, slot).await?;
    let n = sqlx::query(
        "INSERT INTO slot_ownership (slot, epoch, state) VALUES ($1, $2, 'active') \
         ON CONFLICT (slot) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'active', \
         updated_at = now() WHERE slot_ownership.epoch < EXCLUDED.epoch",
    )
    .bind(slot as i32)
    .bind(epoch)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// Activates many never-seen slots at once (first sync of a region).
pub async fn insert_new(db: &PgPool, slots: &[(u16, i64)]) -> Result<u64, sqlx::Error> {
    let s: Vec<i32> = slots.iter().map(|(s, _)| *s as i32).collect();
    let e: Vec<i64> = slots.iter().map(|(_, e)| *e).collect();
    let res = sqlx::query(
        "INSERT INTO slot_ownership (slot, epoch, state) \
         SELECT s, e, 'active' FROM UNNEST($1::int[], $2::bigint[]) AS t(s, e) \
         ON CONFLICT (slot) DO NOTHING",
    )
    .bind(&s)
    .bind(&e)
    .execute(db)
    .await?;
    Ok(res.rows_affected())
}

/// Serves a frozen slot again at `epoch` (operators and tests; the mover
/// rolls back through its own steps, which also record the abort).
pub async fn unfreeze(db: &PgPool, slot: u16, epoch: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    lock(&mut tx, slot).await?;
    let n = sqlx::query(
        "UPDATE slot_ownership SET state = 'active', updated_at = now() \
         WHERE slot = $1 AND epoch = $2",
    )
    .bind(slot as i32)
    .bind(epoch)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}
