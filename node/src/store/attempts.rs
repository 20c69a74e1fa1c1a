//! Redemption attempts, written in batches off the hot path for fraud signals.

use sqlx::PgPool;
use tokio::sync::mpsc;

/// Attempts buffered before the writer drops (and counts) the overflow; the
/// redeem path never waits on this log.
pub const ATTEMPT_BUFFER: usize = 50_000;
const BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct Attempt {
    pub campaign_id: Option<String>,
    pub code: String,
    pub user_id: Option<String>,
    pub result: &'static str,
}

/// Spawns the batch writer; returns the sender the redeem path uses.
pub fn spawn_writer(db: PgPool) -> mpsc::Sender<Attempt> {
    let (tx, mut rx) = mpsc::channel::<Attempt>(ATTEMPT_BUFFER);
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut buf, BATCH).await > 0 {
            let campaigns: Vec<Option<String>> =
                buf.iter().map(|a| a.campaign_id.clone()).collect();
            let codes: Vec<String> = buf.iter().map(|a| a.code.clone()).collect();
            let users: Vec<Option<String>> = buf.iter().map(|a| a.user_id.clone()).collect();
            let results: Vec<String> = buf.iter().map(|a| a.result.to_owned()).collect();
            let res = sqlx::query(
                "INSERT INTO redemption_attempts (campaign_id, code, user_id, result) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])",
            )
            .bind(&campaigns)
            .bind(&codes)
            .bind(&users)
            .bind(&results)
            .execute(&db)
            .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, lost = buf.len(), "could not write redemption attempts");
            }
            buf.clear();
        }
    });
    tx
}
