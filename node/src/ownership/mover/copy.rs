//! Step (3) of a move: the slot's rows, copied from the frozen source into
//! the target in one target transaction, streamed in bounded pages so the
//! mover's memory does not grow with the slot (a 2,000,000-code pool moves
//! like a ten-row one). Each page is `COPY … TO STDOUT` on the source piped
//! chunk by chunk into `COPY … FROM STDIN` on the target, then verified
//! (every row read landed); each table is verified whole at the end (row
//! count and an order-free checksum over the slot's rows on both sides). The transaction also
//! flips the target's step to `copied`, so a copy either lands whole and
//! verified or not at all.

use super::{steps, MoveError, Plan};
use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::BTreeMap;

/// Rows per page.
pub const PAGE_ROWS: i64 = 20_000;

/// How one table's rows of a slot are found, paged and compared.
struct Table {
    name: &'static str,
    /// Columns copied (the outbox's `seq` and `xid` are region-local).
    cols: &'static str,
    /// The paging key, unique within the group.
    key: &'static str,
}

const TABLES: [Table; 5] = [
    Table {
        name: "campaigns",
        cols: "*",
        key: "campaign_id",
    },
    Table {
        name: "codes",
        cols: "*",
        key: "seq",
    },
    Table {
        name: "jobs",
        cols: "*",
        key: "job_id",
    },
    Table {
        name: "redemptions",
        cols: "*",
        key: "redemption_id",
    },
    Table {
        name: "outbox",
        cols: "event_id, type, campaign_id, at, data",
        key: "event_id",
    },
];

/// Rows and checksum of one table's share of the slot.
pub type Sum = (i64, String);

/// A SQL string literal (ids come from our own tables; quoted anyway).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The row text the checksum covers: the copied columns.
fn row_text(t: &Table) -> String {
    if t.cols == "*" {
        "t::text".into()
    } else {
        format!("({})::text", prefixed(t.cols))
    }
}

fn prefixed(cols: &str) -> String {
    cols.split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sum_query(t: &Table, filter: &str) -> String {
    format!(
        "SELECT count(*), coalesce(sum(hashtextextended({}, 0)::numeric), 0)::text \
         FROM {} t WHERE {filter}",
        row_text(t),
        t.name
    )
}

async fn sum_of<'e, E: sqlx::PgExecutor<'e>>(ex: E, q: &str) -> Result<Sum, MoveError> {
    let row = sqlx::query(q).fetch_one(ex).await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Campaign ids of the slot, in the source.
async fn campaigns_of(db: &PgPool, slot: u16) -> Result<Vec<String>, MoveError> {
    Ok(
        sqlx::query_scalar("SELECT campaign_id FROM campaigns WHERE slot = $1 ORDER BY 1")
            .bind(i32::from(slot))
            .fetch_all(db)
            .await?,
    )
}

/// Removes the target's rows of `slot` (stale copies of an earlier tenure,
/// or an aborted copy). Only ever called on a store that does not serve it.
pub(super) async fn delete_slot_rows(
    tx: &mut Transaction<'_, Postgres>,
    slot: u16,
) -> Result<(), MoveError> {
    let of_slot = "campaign_id IN (SELECT campaign_id FROM campaigns WHERE slot = $1)";
    for table in ["outbox", "redemptions", "jobs", "codes"] {
        let filter = if table == "redemptions" {
            "slot = $1"
        } else {
            of_slot
        };
        sqlx::query(&format!("DELETE FROM {table} WHERE {filter}"))
            .bind(i32::from(slot))
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM campaigns WHERE slot = $1")
        .bind(i32::from(slot))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Copies and verifies the slot's rows; returns rows and checksum per table.
pub(super) async fn copy_slot(
    from: &PgPool,
    to: &PgPool,
    p: &Plan,
    on_page: &(dyn Fn() -> Result<(), MoveError> + Sync),
) -> Result<BTreeMap<&'static str, Sum>, MoveError> {
    let mut tx = steps::locked(to, p.slot).await?;
    // A big slot takes a while; the lock wait above was the bounded part.
    sqlx::query("SET LOCAL lock_timeout = 0")
        .execute(&mut *tx)
        .await?;
    match steps::step(&mut tx, p, "target").await?.as_deref() {
        Some("copying") => {}
        Some("aborted") => return Err(MoveError::Aborted),
        other => {
            return Err(MoveError::Refused(format!(
                "target {} is at step {other:?}, not copying",
                p.to
            )))
        }
    }
    delete_slot_rows(&mut tx, p.slot).await?;
    let campaigns = campaigns_of(from, p.slot).await?;
    let mut src = from.acquire().await?;
    let mut out = BTreeMap::new();
    for t in &TABLES {
        for c in &campaigns {
            let group = format!("t.campaign_id = {}", lit(c));
            copy_group(&mut src, &mut tx, t, &group, on_page).await?;
        }
        let list = if campaigns.is_empty() {
            "NULL".to_owned()
        } else {
            campaigns
                .iter()
                .map(|c| lit(c))
                .collect::<Vec<_>>()
                .join(",")
        };
        let whole = sum_query(t, &format!("t.campaign_id IN ({list})"));
        let s = sum_of(&mut *src, &whole).await?;
        let d = sum_of(&mut *tx, &whole).await?;
        if s != d {
            return Err(MoveError::Verify {
                table: t.name,
                src: s,
                dst: d,
            });
        }
        out.insert(t.name, s);
    }
    steps::set_step(&mut tx, p, "target", "copied").await?;
    tx.commit().await?;
    Ok(out)
}

/// Pages one group (a campaign's rows of one table) across.
async fn copy_group(
    src: &mut sqlx::PgConnection,
    tx: &mut Transaction<'_, Postgres>,
    t: &Table,
    group: &str,
    on_page: &(dyn Fn() -> Result<(), MoveError> + Sync),
) -> Result<(), MoveError> {
    let mut after: Option<String> = None;
    loop {
        let lower = match &after {
            Some(k) => format!("{group} AND t.{} > {}", t.key, lit(k)),
            None => group.to_owned(),
        };
        // The page's last key, found through the index before copying.
        let upper: Option<String> = sqlx::query_scalar(&format!(
            "SELECT t.{key}::text FROM {name} t WHERE {lower} ORDER BY t.{key} \
             OFFSET {off} LIMIT 1",
            key = t.key,
            name = t.name,
            off = PAGE_ROWS - 1
        ))
        .fetch_optional(&mut *src)
        .await?;
        let range = match &upper {
            Some(u) if t.key == "seq" => format!("{lower} AND t.seq <= {u}"),
            Some(u) => format!("{lower} AND t.{} <= {}", t.key, lit(u)),
            None => lower.clone(),
        };
        let landed = copy_page(src, tx, t, &range).await?;
        // Per page: every row read landed (the checksum is per table, below;
        // hashing each page on both sides again doubled the copy's time).
        let read = match upper {
            Some(_) => PAGE_ROWS,
            None => {
                sqlx::query_scalar(&format!("SELECT count(*) FROM {} t WHERE {range}", t.name))
                    .fetch_one(&mut *src)
                    .await?
            }
        };
        if landed != read as u64 {
            return Err(MoveError::Verify {
                table: t.name,
                src: (read, "page".into()),
                dst: (landed as i64, "page".into()),
            });
        }
        on_page()?;
        match upper {
            Some(u) => after = Some(u),
            None => return Ok(()),
        }
    }
}

async fn copy_page(
    src: &mut sqlx::PgConnection,
    tx: &mut Transaction<'_, Postgres>,
    t: &Table,
    range: &str,
) -> Result<u64, MoveError> {
    let cols = if t.cols == "*" {
        "t.*".to_owned()
    } else {
        prefixed(t.cols)
    };
    let into = if t.cols == "*" {
        t.name.to_owned()
    } else {
        format!("{} ({})", t.name, t.cols)
    };
    let mut sink = tx
        .copy_in_raw(&format!("COPY {into} FROM STDIN (FORMAT binary)"))
        .await?;
    let mut rows = src
        .copy_out_raw(&format!(
            "COPY (SELECT {cols} FROM {} t WHERE {range}) TO STDOUT (FORMAT binary)",
            t.name
        ))
        .await?;
    loop {
        match rows.try_next().await {
            Ok(Some(chunk)) => {
                if let Err(e) = sink.send(chunk).await {
                    drop(rows);
                    let _ = sink.abort("source page failed").await;
                    return Err(e.into());
                }
            }
            Ok(None) => break,
            Err(e) => {
                drop(rows);
                let _ = sink.abort("source page failed").await;
                return Err(e.into());
            }
        }
    }
    drop(rows);
    Ok(sink.finish().await?)
}
