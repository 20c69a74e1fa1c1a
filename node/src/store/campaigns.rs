//! The campaigns table.

use crate::domain::campaign::{Audience, Campaign, Kind, NewCampaign};
use crate::error::ApiError;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

const COLUMNS: &str =
    "campaign_id, slot, name, kind, code, discount, total_limit, per_user_limit, \
     starts_at, ends_at, status, release_on_refund, audience";

fn from_row(r: &PgRow) -> Result<Campaign, ApiError> {
    let kind: String = r.try_get("kind")?;
    let discount: serde_json::Value = r.try_get("discount")?;
    let audience: Option<serde_json::Value> = r.try_get("audience")?;
    let status: String = r.try_get("status")?;
    Ok(Campaign {
        campaign_id: r.try_get("campaign_id")?,
        slot: r.try_get::<i32, _>("slot")? as u16,
        name: r.try_get("name")?,
        kind: Kind::parse(&kind).ok_or_else(|| ApiError::Internal(format!("kind {kind}")))?,
        code: r.try_get("code")?,
        discount: serde_json::from_value(discount)
            .map_err(|e| ApiError::Internal(format!("stored discount: {e}")))?,
        total_limit: r.try_get("total_limit")?,
        per_user_limit: r.try_get("per_user_limit")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        paused: status == "paused",
        release_on_refund: r.try_get("release_on_refund")?,
        audience: audience
            .map(serde_json::from_value::<Audience>)
            .transpose()
            .map_err(|e| ApiError::Internal(format!("stored audience: {e}")))?,
    })
}

pub async fn insert(db: &PgPool, id: &str, slot: u16, c: &NewCampaign) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    super::slots::fence(&mut tx, slot, None).await?;
    let res = sqlx::query(
        "INSERT INTO campaigns (campaign_id, slot, name, kind, code, discount, total_limit, \
         per_user_limit, starts_at, ends_at, release_on_refund, audience) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(id)
    .bind(slot as i32)
    .bind(&c.name)
    .bind(c.kind.as_str())
    .bind(c.code.as_ref().map(|c| c.as_str().to_owned()))
    .bind(serde_json::to_value(&c.discount).expect("discount serializes"))
    .bind(c.total_limit)
    .bind(c.per_user_limit)
    .bind(c.starts_at)
    .bind(c.ends_at)
    .bind(c.release_on_refund)
    .bind(
        c.audience
            .as_ref()
            .map(|a| serde_json::to_value(a).expect("audience serializes")),
    )
    .execute(&mut *tx)
    .await;
    match res {
        Err(e) if super::is_constraint(&e, "campaigns_code_unique") => Err(ApiError::invalid(
            "code",
            "another campaign already uses this code",
        )),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(tx.commit().await?),
    }
}

pub async fn by_id(db: &PgPool, id: &str) -> Result<Option<Campaign>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE campaign_id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_code(db: &PgPool, code: &str) -> Result<Option<Campaign>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE code = $1");
    let row = sqlx::query(&sql).bind(code).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// Fenced like a redemption: a pause answered 200 is in the store that owns
/// the slot, so a move's copy (which runs after the freeze) carries it.
pub async fn set_paused(db: &PgPool, id: &str, paused: bool) -> Result<bool, ApiError> {
    let status = if paused { "paused" } else { "active" };
    let mut tx = db.begin().await?;
    super::slots::fence(&mut tx, super::slots::of_id(id)?, None).await?;
    let res =
        sqlx::query("UPDATE campaigns SET status = $2, updated_at = now() WHERE campaign_id = $1")
            .bind(id)
            .bind(status)
            .execute(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(res.rows_affected() == 1)
}

/// (active redemptions, generated codes) for the campaign view.
pub async fn counts(db: &PgPool, id: &str) -> Result<(i64, i64), ApiError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND released_at IS NULL), \
                (SELECT count(*) FROM codes WHERE campaign_id = $1)",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
