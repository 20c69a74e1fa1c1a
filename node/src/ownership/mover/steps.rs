//! Each store's own step of a move, in `slot_moves`, written in the same
//! transaction as the change it names and under the slot's exclusive
//! advisory lock (the lock a redemption holds shared). Every function here
//! is idempotent, so a re-run mover can call any of them again.

use super::{MoveError, Plan};
use crate::ownership::pg::SLOT_LOCK_CLASS;
use sqlx::{PgPool, Postgres, Transaction};

/// Longest wait for in-flight transactions of the slot (a freeze waits out
/// every redemption holding the slot's shared lock).
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// A transaction holding the slot's exclusive lock.
pub(super) async fn locked(db: &PgPool, slot: u16) -> Result<Transaction<'_, Postgres>, MoveError> {
    let mut tx = db.begin().await?;
    sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SLOT_LOCK_CLASS)
        .bind(i32::from(slot))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The recorded step of `role` for the move, locked until commit.
pub(super) async fn step(
    tx: &mut Transaction<'_, Postgres>,
    p: &Plan,
    role: &str,
) -> Result<Option<String>, MoveError> {
    Ok(sqlx::query_scalar(
        "SELECT step FROM slot_moves WHERE move_id = $1 AND role = $2 FOR UPDATE",
    )
    .bind(&p.id)
    .bind(role)
    .fetch_optional(&mut **tx)
    .await?)
}

pub(super) async fn set_step(
    tx: &mut Transaction<'_, Postgres>,
    p: &Plan,
    role: &str,
    step: &str,
) -> Result<(), MoveError> {
    sqlx::query(
        "INSERT INTO slot_moves (move_id, role, slot, epoch, step) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (move_id, role) DO UPDATE SET step = EXCLUDED.step, updated_at = now()",
    )
    .bind(&p.id)
    .bind(role)
    .bind(i32::from(p.slot))
    .bind(p.epoch)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The target's step without locking (to decide where a re-run resumes).
pub async fn target_step(db: &PgPool, id: &str) -> Result<Option<String>, MoveError> {
    Ok(
        sqlx::query_scalar("SELECT step FROM slot_moves WHERE move_id = $1 AND role = 'target'")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Target: the move is recorded as `copying` (a re-run copies again). A
/// target already active for this move, or one that aborted it, says so.
pub(super) async fn prepare_target(db: &PgPool, p: &Plan) -> Result<(), MoveError> {
    let mut tx = locked(db, p.slot).await?;
    match step(&mut tx, p, "target").await?.as_deref() {
        Some("active" | "done") => return Err(MoveError::AlreadyActive),
        Some("aborted") => return Err(MoveError::Aborted),
        _ => {}
    }
    let serving: Option<i64> =
        sqlx::query_scalar("SELECT epoch FROM slot_ownership WHERE slot = $1 AND state = 'active'")
            .bind(i32::from(p.slot))
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(e) = serving {
        return Err(MoveError::Refused(format!(
            "target {} already serves slot {} at epoch {e}",
            p.to, p.slot
        )));
    }
    set_step(&mut tx, p, "target", "copying").await?;
    tx.commit().await?;
    Ok(())
}

/// Source: freeze the slot at the move's epoch, once no transaction holds
/// it. Refused when the source holds another epoch or rolled this move back
/// already (a mover that wakes up late must not freeze a slot for good).
pub(super) async fn freeze_source(db: &PgPool, p: &Plan) -> Result<(), MoveError> {
    let mut tx = locked(db, p.slot).await?;
    if step(&mut tx, p, "source").await?.as_deref() == Some("aborted") {
        return Err(MoveError::Aborted);
    }
    let held: Option<i64> =
        sqlx::query_scalar("SELECT epoch FROM slot_ownership WHERE slot = $1 FOR UPDATE")
            .bind(i32::from(p.slot))
            .fetch_optional(&mut *tx)
            .await?;
    if held != Some(p.epoch) {
        return Err(MoveError::Refused(format!(
            "old owner {} holds slot {} at {held:?}, the move began at epoch {}",
            p.from, p.slot, p.epoch
        )));
    }
    sqlx::query("UPDATE slot_ownership SET state = 'frozen', updated_at = now() WHERE slot = $1")
        .bind(i32::from(p.slot))
        .execute(&mut *tx)
        .await?;
    set_step(&mut tx, p, "source", "frozen").await?;
    tx.commit().await?;
    Ok(())
}

/// Target: active at epoch+1, only from `copied` (so never after an abort).
pub(super) async fn activate_target(db: &PgPool, p: &Plan) -> Result<(), MoveError> {
    let mut tx = locked(db, p.slot).await?;
    match step(&mut tx, p, "target").await?.as_deref() {
        Some("copied") => {}
        Some("active" | "done") => return Ok(()),
        Some("aborted") => return Err(MoveError::Aborted),
        other => {
            return Err(MoveError::Refused(format!(
                "target {} is at step {other:?}, not copied",
                p.to
            )))
        }
    }
    let n = sqlx::query(
        "INSERT INTO slot_ownership (slot, epoch, state) VALUES ($1, $2, 'active') \
         ON CONFLICT (slot) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'active', \
         updated_at = now() WHERE slot_ownership.epoch < EXCLUDED.epoch",
    )
    .bind(i32::from(p.slot))
    .bind(p.epoch + 1)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(MoveError::Refused(format!(
            "target {} holds slot {} at an epoch ≥ {}",
            p.to,
            p.slot,
            p.epoch + 1
        )));
    }
    set_step(&mut tx, p, "target", "active").await?;
    tx.commit().await?;
    Ok(())
}

/// Target: the roll-back's first step, and the one that makes it safe: the
/// move is marked `aborted` (its copied rows removed), so no mover can ever
/// activate it. Returns false when the target is already active for this
/// move: then the move can only go forward.
pub(super) async fn abort_target(db: &PgPool, p: &Plan) -> Result<bool, MoveError> {
    let mut tx = locked(db, p.slot).await?;
    match step(&mut tx, p, "target").await?.as_deref() {
        Some("active" | "done") => return Ok(false),
        Some("aborted") => return Ok(true),
        _ => {}
    }
    let serving: Option<String> =
        sqlx::query_scalar("SELECT state FROM slot_ownership WHERE slot = $1")
            .bind(i32::from(p.slot))
            .fetch_optional(&mut *tx)
            .await?;
    if serving.as_deref() != Some("active") {
        super::copy::delete_slot_rows(&mut tx, p.slot).await?;
    }
    set_step(&mut tx, p, "target", "aborted").await?;
    tx.commit().await?;
    Ok(true)
}

/// Source: serve again at the old epoch (roll-back's last step), and
/// remember the move is over so a late freeze of it is refused.
pub(super) async fn unfreeze_source(db: &PgPool, p: &Plan) -> Result<(), MoveError> {
    let mut tx = locked(db, p.slot).await?;
    sqlx::query(
        "UPDATE slot_ownership SET state = 'active', updated_at = now() \
         WHERE slot = $1 AND epoch = $2",
    )
    .bind(i32::from(p.slot))
    .bind(p.epoch)
    .execute(&mut *tx)
    .await?;
    set_step(&mut tx, p, "source", "aborted").await?;
    tx.commit().await?;
    Ok(())
}

/// Bookkeeping once raft committed the move: the target's step is `done`,
/// the source's `released` (its slot stays frozen; the map sync keeps it so).
pub(super) async fn finish(src: &PgPool, dst: &PgPool, p: &Plan) -> Result<(), MoveError> {
    let mut tx = dst.begin().await?;
    set_step(&mut tx, p, "target", "done").await?;
    tx.commit().await?;
    let mut tx = src.begin().await?;
    set_step(&mut tx, p, "source", "released").await?;
    tx.commit().await?;
    Ok(())
}
