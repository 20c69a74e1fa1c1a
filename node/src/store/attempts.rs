//! Redemption attempts, written in batches off the hot path for fraud signals.
//!
//! One bad row never costs the batch: text is made storable before it is
//! written (Postgres refuses NUL), and a batch Postgres still refuses is
//! written again row by row, so only a row that cannot be stored at all is
//! lost, and counted.

use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Attempts buffered before the writer drops (and counts) the overflow; the
/// redeem path never waits on this log.
pub const ATTEMPT_BUFFER: usize = 50_000;
const BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct Attempt {
    pub campaign_id: Option<String>,
    pub code: String,
    pub user_id: Option<String>,
    /// The client's address as the rate limit saw it (peer, or the hop
    /// our router appended).
    pub ip: Option<String>,
    pub result: &'static str,
}

/// Text as Postgres can store it: control characters (NUL among them) become
/// U+FFFD, so a bot cannot make its own attempts unstorable.
pub fn storable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Spawns the batch writer; returns the sender the redeem path uses.
pub fn spawn_writer(db: PgPool, metrics: Arc<Metrics>) -> mpsc::Sender<Attempt> {
    let (tx, mut rx) = mpsc::channel::<Attempt>(ATTEMPT_BUFFER);
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut buf, BATCH).await > 0 {
            for a in buf.iter_mut() {
                a.code = storable(&a.code);
                a.campaign_id = a.campaign_id.as_deref().map(storable);
                a.user_id = a.user_id.as_deref().map(storable);
                a.ip = a.ip.as_deref().map(storable);
            }
            if let Err(e) = write(&db, &buf).await {
                tracing::warn!(error = %e, rows = buf.len(), "attempt batch refused; writing row by row");
                for a in &buf {
                    if let Err(e) = write(&db, std::slice::from_ref(a)).await {
                        tracing::warn!(error = %e, "could not write a redemption attempt");
                        metrics.inc("coupon_attempt_log_dropped_total", &[]);
                    }
                }
            }
            buf.clear();
        }
    });
    tx
}

async fn write(db: &PgPool, rows: &[Attempt]) -> Result<(), sqlx::Error> {
    let campaigns: Vec<Option<String>> = rows.iter().map(|a| a.campaign_id.clone()).collect();
    let codes: Vec<String> = rows.iter().map(|a| a.code.clone()).collect();
    let users: Vec<Option<String>> = rows.iter().map(|a| a.user_id.clone()).collect();
    let ips: Vec<Option<String>> = rows.iter().map(|a| a.ip.clone()).collect();
    let results: Vec<String> = rows.iter().map(|a| a.result.to_owned()).collect();
    sqlx::query(
        "INSERT INTO redemption_attempts (campaign_id, code, user_id, ip, result) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(&campaigns)
    .bind(&codes)
    .bind(&users)
    .bind(&ips)
    .bind(&results)
    .execute(db)
    .await?;
    Ok(())
}
