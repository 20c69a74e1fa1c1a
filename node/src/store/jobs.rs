//! Code-generation jobs: progress and per-store report.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

pub struct Job {
    pub job_id: String,
    pub campaign_id: String,
    pub state: String,
    pub done: i64,
    pub total: i64,
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn create(
    db: &PgPool,
    id: &str,
    campaign: &str,
    kind: &str,
    total: i64,
) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    super::slots::fence(&mut tx, super::slots::of_id(campaign)?, None).await?;
    sqlx::query(
        "INSERT INTO jobs (job_id, campaign_id, kind, state, total) VALUES ($1,$2,$3,'running',$4)",
    )
    .bind(id)
    .bind(campaign)
    .bind(kind)
    .bind(total)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Counts `n` more codes stored, inside the transaction that stored them:
/// `done` never runs ahead of what committed, and progress costs no commit
/// (and no wait for the synchronous standby) of its own. The caller has
/// fenced the transaction; job rows are slot data like every other write.
pub async fn add_progress(conn: &mut PgConnection, id: &str, n: i64) -> Result<(), ApiError> {
    sqlx::query("UPDATE jobs SET done = done + $2, updated_at = now() WHERE job_id = $1")
        .bind(id)
        .bind(n)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn finish(
    db: &PgPool,
    id: &str,
    state: &str,
    report: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    super::slots::fence(&mut tx, super::slots::of_id(id)?, None).await?;
    sqlx::query(
        "UPDATE jobs SET state = $2, report = $3, error = $4, updated_at = now() WHERE job_id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(report)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get(db: &PgPool, id: &str) -> Result<Option<Job>, ApiError> {
    let row = sqlx::query(
        "SELECT job_id, campaign_id, state, done, total, report, error, created_at FROM jobs WHERE job_id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Job {
            job_id: r.try_get(0)?,
            campaign_id: r.try_get(1)?,
            state: r.try_get(2)?,
            done: r.try_get(3)?,
            total: r.try_get(4)?,
            report: r.try_get(5)?,
            error: r.try_get(6)?,
            created_at: r.try_get(7)?,
        })
    })
    .transpose()
}
