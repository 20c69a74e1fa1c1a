//! Validate's `remaining` when it must be counted in Postgres: the
//! Postgres-only engine, and the Redis engine while Redis cannot answer
//! for the campaign (down, flushed, being rebuilt).
//!
//! That count reads every unused code of a pool (224–320 ms for a
//! 1,000,000-code pool on the dev VM) or every active seat of a shared
//! campaign. Counted per validate, 300 validates at once ran 31 counts side
//! by side and a region that had lost Redis answered 30 validates a second
//! with both cores busy in Postgres. Here one count per campaign runs at a
//! time, in a task of its own (so a count that outlives the validates
//! waiting for it still lands for the next ones), every validate arriving
//! meanwhile shares it, and its answer serves for ten times what it took,
//! within [`MIN_FRESH`] and [`MAX_FRESH`]: counting costs Postgres about a
//! tenth of a core per campaign at most. `remaining` is a hint (the redeem
//! decides, and a validate consumes nothing), so an answer that old is
//! what a validate gives. A failed count is not kept.

use super::pg;
use crate::domain::campaign::Campaign;
use crate::error::{ApiError, ApiResult};
use futures::future::{BoxFuture, FutureExt, Shared};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a count serves at least, and at most (a count slowed by a
/// lock or a busy Postgres would otherwise serve for long).
pub const MIN_FRESH: Duration = Duration::from_secs(1);
pub const MAX_FRESH: Duration = Duration::from_secs(5);
/// Campaigns remembered; past this, spent entries are dropped.
const REMEMBERED: usize = 1_000;

/// A count (`Err` when it failed), and until when it serves.
type Counted = (Result<Option<i64>, ()>, Instant);
type Count = Shared<BoxFuture<'static, Counted>>;

pub struct RemainingCounts {
    db: PgPool,
    counts: Mutex<HashMap<String, Count>>,
}

impl RemainingCounts {
    pub fn new(db: PgPool) -> RemainingCounts {
        RemainingCounts {
            db,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Uses left in `c`, counted in Postgres at most once per freshness
    /// period (and once at a time).
    pub async fn of(&self, c: &Campaign) -> ApiResult<Option<i64>> {
        let (mut counted, until) = self.count(c).await;
        if until <= Instant::now() {
            // A count that finished while nobody waited for it reads as
            // running until someone does: expired, it is not an answer.
            counted = self.count(c).await.0;
        }
        counted.map_err(|()| ApiError::Unavailable { what: "postgres" })
    }

    /// The count to share: the campaign's running or fresh one, else a new
    /// one.
    fn count(&self, c: &Campaign) -> Count {
        let now = Instant::now();
        let live = |count: &Count| match count.peek() {
            None => true,
            Some((counted, until)) => counted.is_ok() && *until > now,
        };
        let mut counts = self.counts.lock().expect("remaining counts lock");
        if let Some(count) = counts.get(&c.campaign_id).filter(|count| live(count)) {
            return count.clone();
        }
        if counts.len() >= REMEMBERED {
            counts.retain(|_, count| live(count));
        }
        let (db, campaign) = (self.db.clone(), c.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let counted = pg::remaining(&db, &campaign).await.map_err(|e| {
                tracing::warn!(error = %e, campaign = %campaign.campaign_id, "remaining count failed");
            });
            let fresh = (started.elapsed() * 10).clamp(MIN_FRESH, MAX_FRESH);
            (counted, Instant::now() + fresh)
        });
        let count = async move { task.await.unwrap_or_else(|_| (Err(()), Instant::now())) }
            .boxed()
            .shared();
        counts.insert(c.campaign_id.clone(), count.clone());
        count
    }
}
