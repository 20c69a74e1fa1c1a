//! The redemptions table: reads and the release transaction.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
pub use coupon_api::coupons::Redemption;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

pub const COLUMNS: &str = "redemption_id, campaign_id, code, pool_code, user_id, order_id, \
     discount, redeemed_at, released_at, request_hash";

pub fn from_row(r: &PgRow) -> Result<Redemption, ApiError> {
    let code: String = r.try_get("code")?;
    let pool_code: Option<String> = r.try_get("pool_code")?;
    let discount: serde_json::Value = r.try_get("discount")?;
    Ok(Redemption {
        redemption_id: r.try_get("redemption_id")?,
        campaign_id: r.try_get("campaign_id")?,
        assigned_code: pool_code.filter(|p| *p != code),
        code,
        user_id: r.try_get("user_id")?,
        order_id: r.try_get("order_id")?,
        discount: serde_json::from_value(discount)
            .map_err(|e| ApiError::Internal(format!("stored discount: {e}")))?,
        redeemed_at: r.try_get("redeemed_at")?,
        released_at: r.try_get("released_at")?,
        request_hash: r.try_get("request_hash")?,
    })
}

pub async fn by_id(db: &PgPool, id: &str) -> Result<Option<Redemption>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM redemptions WHERE redemption_id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// [`by_key`]'s statement: `$1` campaign, `$2` user, `$3` key.
pub fn by_key_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM redemptions WHERE campaign_id = $1 AND user_id = $2 \
             AND idempotency_key = $3"
        )
    })
}

/// The caller's redemption under `key` in `campaign_id`: idempotency keys
/// are scoped to the caller and the campaign (docs/decisions.md).
pub async fn by_key(
    conn: &mut PgConnection,
    campaign_id: &str,
    user: &str,
    key: &str,
) -> Result<Option<Redemption>, ApiError> {
    let row = sqlx::query(by_key_sql())
        .bind(campaign_id)
        .bind(user)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The row a release works on, locked for the rest of the transaction.
pub struct ForRelease {
    pub redemption: Redemption,
    pub pool_code: Option<String>,
    pub seat_no: Option<i32>,
}

pub async fn lock_for_release(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ForRelease>, ApiError> {
    let sql =
        format!("SELECT {COLUMNS}, seat_no FROM redemptions WHERE redemption_id = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.map(|r| {
        Ok(ForRelease {
            pool_code: r.try_get("pool_code")?,
            seat_no: r.try_get("seat_no")?,
            redemption: from_row(&r)?,
        })
    })
    .transpose()
}

pub async fn mark_released(
    conn: &mut PgConnection,
    id: &str,
    reason: &str,
) -> Result<DateTime<Utc>, ApiError> {
    let row = sqlx::query(
        "UPDATE redemptions SET released_at = now(), release_reason = $2 \
         WHERE redemption_id = $1 RETURNING released_at",
    )
    .bind(id)
    .bind(reason)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get(0)?)
}
