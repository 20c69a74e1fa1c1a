//! The transactional outbox and its feed.
//!
//! The feed never skips a committed event (migration 0003): it serves only
//! events written by transactions older than the oldest one still running,
//! in (transaction id, seq) order, and its cursor is that pair. Nothing can
//! commit below the horizon later, so a consumer's cursor never moves past
//! an event it has not seen, however long a transaction stays open.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

pub async fn append(
    conn: &mut PgConnection,
    event_id: &str,
    kind: &str,
    campaign_id: &str,
    data: &serde_json::Value,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO outbox (event_id, type, campaign_id, data) VALUES ($1,$2,$3,$4) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(kind)
    .bind(campaign_id)
    .bind(data)
    .execute(conn)
    .await?;
    Ok(())
}

/// A position in the feed: after the event written by transaction `xid`
/// with sequence number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub xid: i64,
    pub seq: i64,
}

impl Cursor {
    /// `"<xid>.<seq>"`, as served in `next`.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (xid, seq) = s.split_once('.')?;
        let c = Cursor {
            xid: xid.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        (c.xid >= 0 && c.seq >= 0).then_some(c)
    }

    /// A cursor from before migration 0003 (a bare `seq`): resume after that
    /// event. Events are at-least-once with deterministic ids, so a cursor
    /// whose event is gone restarts from the beginning rather than skip.
    pub async fn legacy(db: &PgPool, seq: i64) -> Result<Cursor, ApiError> {
        if seq == 0 {
            return Ok(Cursor::default());
        }
        let xid: Option<i64> =
            sqlx::query_scalar("SELECT xid::text::bigint FROM outbox WHERE seq = $1")
                .bind(seq)
                .fetch_optional(db)
                .await?;
        Ok(xid.map_or(Cursor::default(), |xid| Cursor { xid, seq }))
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.xid, self.seq)
    }
}

pub struct Event {
    pub cursor: Cursor,
    pub id: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

pub async fn feed(db: &PgPool, after: Cursor, limit: i64) -> Result<Vec<Event>, ApiError> {
    let rows = sqlx::query(
        "SELECT xid::text::bigint, seq, event_id, type, at, data FROM outbox \
         WHERE (xid, seq) > ($1::text::xid8, $2) \
           AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY xid, seq LIMIT $3",
    )
    .bind(after.xid.to_string())
    .bind(after.seq)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                cursor: Cursor {
                    xid: r.try_get(0)?,
                    seq: r.try_get(1)?,
                },
                id: r.try_get(2)?,
                kind: r.try_get(3)?,
                at: r.try_get(4)?,
                data: r.try_get(5)?,
            })
        })
        .collect()
}
