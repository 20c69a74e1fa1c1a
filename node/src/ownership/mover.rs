//! Moving one slot between regions, in docs/architecture.md §7's order with the epoch
//! as fencing token: (1) raft begin-move; (2) the old owner freezes the slot
//! in its Postgres, waiting out in-flight transactions; (3) the slot's rows
//! are copied and verified (count + checksum per table); (4) the new owner
//! activates the slot at epoch+1; (5) raft complete-move; (6) routers follow
//! the map (or the 421 hint). Until (4) any failure aborts: raft abort-move
//! and the old owner unfreezes at its old epoch.
//!
//! Covers: campaigns, codes, redemptions, outbox events and jobs of the
//! slot (attempt logs stay behind). Not covered: seeding the new owner's
//! Redis (the claim engine rebuilds from Postgres), and unplanned failover.

use super::pg;
use coupon_raft::client::{AdminClient, ClientError};
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("raft: {0}")]
    Raft(#[from] ClientError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("{0}")]
    Refused(String),
    #[error("copy of table {table} does not verify: source {src:?}, target {dst:?}")]
    Verify {
        table: &'static str,
        src: (i64, String),
        dst: (i64, String),
    },
}

/// What was moved.
#[derive(Debug, Clone)]
pub struct MoveReport {
    pub slot: u16,
    pub from: String,
    pub to: String,
    pub new_epoch: i64,
    /// Per table: rows copied and their checksum.
    pub tables: BTreeMap<&'static str, (i64, String)>,
}

/// Tables of a slot, with the filter selecting its rows (`$1` = slot) and the
/// row text the checksum covers (the outbox's `seq` is region-local).
const TABLES: [(&str, &str, &str); 5] = [
    ("campaigns", "slot = $1", "t::text"),
    (
        "codes",
        "campaign_id IN (SELECT campaign_id FROM campaigns WHERE slot = $1)",
        "t::text",
    ),
    (
        "jobs",
        "campaign_id IN (SELECT campaign_id FROM campaigns WHERE slot = $1)",
        "t::text",
    ),
    ("redemptions", "slot = $1", "t::text"),
    (
        "outbox",
        "campaign_id IN (SELECT campaign_id FROM campaigns WHERE slot = $1)",
        "(t.event_id, t.type, t.campaign_id, t.at, t.data)::text",
    ),
];

/// Moves `slot` from the region whose Postgres is `from_db` to region `to`.
pub async fn move_slot(
    admin: &AdminClient,
    from_db: &PgPool,
    to_db: &PgPool,
    slot: u16,
    to: &str,
) -> Result<MoveReport, MoveError> {
    let began = admin
        .begin_move(
            &format!("move-{slot}-to-{to}-begin-{}", nonce()),
            slot.into(),
            to,
        )
        .await?;
    let change = began
        .slot
        .ok_or_else(|| MoveError::Refused("begin-move answered without the slot".into()))?;
    let (from, epoch) = (change.region.to_string(), change.epoch as i64);
    let abort = |why: MoveError| async move {
        let _ = admin
            .abort_move(&format!("move-{slot}-abort-{}", nonce()), slot.into())
            .await;
        let _ = pg::unfreeze(from_db, slot, epoch).await;
        tracing::warn!(slot, error = %why, "slot move aborted; old owner unfrozen");
        Err(why)
    };
    match pg::freeze(from_db, slot, i64::MAX).await {
        Ok(Some(e)) if e == epoch => {}
        Ok(other) => {
            let why = format!("old owner {from} holds slot {slot} at {other:?}, map says {epoch}");
            return abort(MoveError::Refused(why)).await;
        }
        Err(e) => return abort(e.into()).await,
    }
    let tables = match copy_and_verify(from_db, to_db, slot).await {
        Ok(t) => t,
        Err(e) => return abort(e).await,
    };
    if !pg::activate(to_db, slot, epoch + 1).await? {
        return abort(MoveError::Refused("new owner holds a newer epoch".into())).await;
    }
    admin
        .complete_move(
            &format!("move-{slot}-to-{to}-complete-{epoch}"),
            slot.into(),
        )
        .await?;
    tracing::info!(slot, %from, to, new_epoch = epoch + 1, "slot moved");
    Ok(MoveReport {
        slot,
        from,
        to: to.to_owned(),
        new_epoch: epoch + 1,
        tables,
    })
}

fn nonce() -> u64 {
    rand::random()
}

/// Replaces the target's rows of `slot` with the source's, in one target
/// transaction that first proves the target does not serve the slot.
async fn copy_and_verify(
    from_db: &PgPool,
    to_db: &PgPool,
    slot: u16,
) -> Result<BTreeMap<&'static str, (i64, String)>, MoveError> {
    let mut tx = to_db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(pg::SLOT_LOCK_CLASS)
        .bind(slot as i32)
        .execute(&mut *tx)
        .await?;
    let serving: Option<String> =
        sqlx::query_scalar("SELECT state FROM slot_ownership WHERE slot = $1")
            .bind(slot as i32)
            .fetch_optional(&mut *tx)
            .await?;
    if serving.as_deref() == Some("active") {
        return Err(MoveError::Refused(format!(
            "target already serves slot {slot}"
        )));
    }
    for (table, filter, _) in TABLES.iter().rev() {
        sqlx::query(&format!("DELETE FROM {table} WHERE {filter}"))
            .bind(slot as i32)
            .execute(&mut *tx)
            .await?;
    }
    for (table, filter, _) in TABLES {
        let rows: serde_json::Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(json_agg(t), '[]') FROM {table} t WHERE {filter}"
        ))
        .bind(slot as i32)
        .fetch_one(from_db)
        .await?;
        let cols = if table == "outbox" {
            "event_id, type, campaign_id, at, data"
        } else {
            "*"
        };
        let into = if table == "outbox" {
            "outbox (event_id, type, campaign_id, at, data)"
        } else {
            table
        };
        sqlx::query(&format!(
            "INSERT INTO {into} SELECT {cols} FROM jsonb_populate_recordset(NULL::{table}, $1)"
        ))
        .bind(rows)
        .execute(&mut *tx)
        .await?;
    }
    let mut out = BTreeMap::new();
    for (table, filter, text) in TABLES {
        let q = format!(
            "SELECT count(*), coalesce(md5(string_agg(md5({text}), '' ORDER BY md5({text}))), '') \
             FROM {table} t WHERE {filter}"
        );
        let src = sum(sqlx::query(&q).bind(slot as i32).fetch_one(from_db).await?)?;
        let dst = sum(sqlx::query(&q)
            .bind(slot as i32)
            .fetch_one(&mut *tx)
            .await?)?;
        if src != dst {
            return Err(MoveError::Verify { table, src, dst });
        }
        out.insert(table, src);
    }
    tx.commit().await?;
    Ok(out)
}

fn sum(row: sqlx::postgres::PgRow) -> Result<(i64, String), sqlx::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?))
}
