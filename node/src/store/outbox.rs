//! The transactional outbox and its feed.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

/// Events younger than this are held back from the feed: a transaction that
/// took its `seq` earlier may still commit, and a consumer's cursor must never
/// move past an event it has not seen. Redeem transactions are bounded well
/// below this by `statement_timeout`.
pub const FEED_SETTLE_MS: i64 = 2000;

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

pub struct Event {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

pub async fn feed(db: &PgPool, after: i64, limit: i64) -> Result<Vec<Event>, ApiError> {
    let rows = sqlx::query(
        "SELECT seq, event_id, type, at, data FROM outbox \
         WHERE seq > $1 AND at < now() - make_interval(secs => $3::double precision / 1000) \
         ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .bind(FEED_SETTLE_MS as f64)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                seq: r.try_get(0)?,
                id: r.try_get(1)?,
                kind: r.try_get(2)?,
                at: r.try_get(3)?,
                data: r.try_get(4)?,
            })
        })
        .collect()
}
