//! The seat pick's exact counts of a campaign's seats in use, shared by
//! the picks that ask at once ([`crate::store::batch`]).
//!
//! A count reads every active seat of the campaign, and once a campaign
//! is full every losing redeem on the Postgres-only engine needs one before
//! it may answer `exhausted`: counted in each loser's own transaction, a
//! burst's losers cost Postgres 878 µs each at 1,000 seats and 2,474 µs at
//! 10,000 (docs/benchmarks.md, "The Postgres-only engine's losers"). Here
//! the picks that ask while a count is running join the next one, so a
//! burst pays about one count per count's duration, and every answer
//! still comes from a count that started after its pick asked: a seat
//! released before a loser asked is seen by its count.
//!
//! The counts run on a connection of their own, not the request pool's:
//! the picks waiting for them each hold a pool connection (their open
//! transaction), and a full pool would leave the count nothing to run on.
//! Reading outside the pick's transaction changes nothing a count decides:
//! the transaction has written nothing before its pick, and in Postgres'
//! read-committed mode each statement reads its own snapshot anyway.

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store::batch::Batched;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// Asks per batch; the distinct campaigns among them are counted once each.
const BATCH: usize = 1024;
/// How long a batch waits for the counting connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// `$1` distinct campaigns: per campaign, in order, its seats in use.
const SEATS_OF_CAMPAIGNS: &str = "SELECT (SELECT count(*) FROM redemptions r \
       WHERE r.campaign_id = q.c AND r.seat_no IS NOT NULL AND r.released_at IS NULL) \
     FROM UNNEST($1::text[]) WITH ORDINALITY AS q(c, i) ORDER BY q.i";

#[derive(Clone)]
pub struct SeatCounts {
    batches: Batched<String, ApiResult<i64>>,
}

impl SeatCounts {
    /// Counts on one connection of its own to `db`'s database, opened at
    /// the first count.
    pub fn spawn(db: &PgPool, metrics: Arc<Metrics>) -> SeatCounts {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with((*db.connect_options()).clone());
        let batches = Batched::spawn(BATCH, move |asks: Vec<String>| {
            let (db, metrics) = (own.clone(), metrics.clone());
            async move {
                let mut campaigns: Vec<String> = asks.clone();
                campaigns.sort_unstable();
                campaigns.dedup();
                for _ in &campaigns {
                    metrics.inc("coupon_seat_counts_total", &[]);
                }
                let counted = sqlx::query_scalar::<_, i64>(SEATS_OF_CAMPAIGNS)
                    .bind(&campaigns)
                    .fetch_all(&db)
                    .await;
                if let Some(ms) = held_after_count() {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                match counted {
                    Ok(counts) if counts.len() == campaigns.len() => asks
                        .iter()
                        .map(|a| {
                            let i = campaigns.binary_search(a).expect("counted");
                            Ok(counts[i])
                        })
                        .collect(),
                    other => {
                        if let Err(e) = other {
                            tracing::warn!(error = %e, asks = asks.len(), "seat count failed");
                        }
                        asks.iter()
                            .map(|_| Err(ApiError::Unavailable { what: "postgres" }))
                            .collect()
                    }
                }
            }
        });
        SeatCounts { batches }
    }

    /// Seats of `campaign_id` in use, counted by a read that started after
    /// this call.
    pub async fn of(&self, campaign_id: &str) -> ApiResult<i64> {
        self.batches
            .ask(campaign_id.to_owned())
            .await
            .unwrap_or(Err(ApiError::Unavailable { what: "postgres" }))
    }
}

/// A count that takes long after its read, for the test that a pick never
/// takes the answer of a count that started before it asked.
fn held_after_count() -> Option<u64> {
    fail::fail_point!("after_seat_count", |ms| ms.and_then(|ms| ms.parse().ok()));
    None
}
