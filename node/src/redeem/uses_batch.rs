//! Validate's count of a user's active redemptions, batched
//! ([`crate::store::batch`]): one query per request was most of a
//! validate's Postgres CPU (80–92 µs per validate at 200 connections, in
//! docs/benchmarks.md) and a pool wake-up in the node for each.

use crate::error::{ApiError, ApiResult};
use crate::store::batch::Batched;
use sqlx::PgPool;

/// Asks per query.
const BATCH: usize = 256;

/// `$1` campaigns, `$2` users: per ask, in order, that user's active
/// redemptions of that campaign, each counted through an index that
/// starts with `(campaign_id, user_id)` (a scalar subquery per ask, which
/// Postgres cannot turn into one read of the campaign).
/// Test: `plans::point_reads_read_a_few_rows_whatever_the_statistics`.
pub const USES_OF_USERS: &str = "SELECT (SELECT count(*) FROM redemptions r \
       WHERE r.campaign_id = q.c AND r.user_id = q.u AND r.released_at IS NULL) \
     FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS q(c, u, i) ORDER BY q.i";

#[derive(Clone)]
pub struct UsesReader {
    batches: Batched<(String, String), ApiResult<i64>>,
}

impl UsesReader {
    pub fn spawn(db: PgPool) -> UsesReader {
        let batches = Batched::spawn(BATCH, move |asks: Vec<(String, String)>| {
            let db = db.clone();
            async move {
                let (campaigns, users): (Vec<String>, Vec<String>) = asks.into_iter().unzip();
                let counted = sqlx::query_scalar::<_, i64>(USES_OF_USERS)
                    .bind(&campaigns)
                    .bind(&users)
                    .fetch_all(&db)
                    .await;
                match counted {
                    Ok(counts) if counts.len() == users.len() => {
                        return counts.into_iter().map(Ok).collect();
                    }
                    Ok(counts) => {
                        tracing::warn!(
                            asks = users.len(),
                            answers = counts.len(),
                            "batched use count answered a different number of asks"
                        );
                    }
                    // Logged once for the batch; every waiter answers 503.
                    Err(e) => {
                        tracing::warn!(error = %e, asks = users.len(), "batched use count failed")
                    }
                }
                let unavailable = || Err(ApiError::Unavailable { what: "postgres" });
                users.iter().map(|_| unavailable()).collect()
            }
        });
        UsesReader { batches }
    }

    /// Active redemptions of `user` in `campaign_id`.
    pub async fn of(&self, campaign_id: &str, user: &str) -> ApiResult<i64> {
        let ask = (campaign_id.to_owned(), user.to_owned());
        self.batches
            .ask(ask)
            .await
            .unwrap_or(Err(ApiError::Unavailable { what: "postgres" }))
    }
}
