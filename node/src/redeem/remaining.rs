//! Validate's `remaining` when it must be counted in Postgres: the
//! Postgres-only engine, and the Redis engine while Redis cannot answer
//! for the campaign (down, flushed, being rebuilt).
//!
//! That count reads every unused code of a pool (about 250 ms for a
//! 1,000,000-code pool on the dev VM) or every active seat of a shared
//! campaign, so counted per validate it would melt Postgres exactly when
//! Redis is gone: 200 validates at once were 50 s of Postgres CPU. Here
//! one count per campaign is in flight at a time, every validate arriving
//! meanwhile shares it, and its answer serves for ten times what it took,
//! within [`MIN_FRESH`] and [`MAX_FRESH`], so counting costs Postgres
//! about a tenth of a core per campaign at most (up to counts of 500 ms). `remaining` is a hint (the
//! redeem decides, and consumes nothing early), so an answer up to that
//! old is what a validate gives; a failed count is never kept.

use super::pg;
use crate::domain::campaign::Campaign;
use crate::error::{ApiError, ApiResult};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long a count serves at least, and at most (a count slowed by a
/// lock or a busy Postgres would otherwise serve for long).
pub const MIN_FRESH: Duration = Duration::from_secs(1);
pub const MAX_FRESH: Duration = Duration::from_secs(5);
/// Campaigns remembered; past this, stale entries are dropped.
const REMEMBERED: usize = 1_000;

type Counted = Result<Option<i64>, ()>;
/// A count, and until when it serves; empty while it runs.
type Shared = Arc<OnceCell<(Counted, Instant)>>;

pub struct RemainingCounts {
    db: PgPool,
    counts: Mutex<HashMap<String, Shared>>,
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
        let cell = self.cell(&c.campaign_id);
        let (counted, _) = cell
            .get_or_init(|| async {
                let started = Instant::now();
                let counted = pg::remaining(&self.db, c).await.map_err(|e| {
                    tracing::warn!(error = %e, campaign = %c.campaign_id, "remaining count failed");
                });
                let fresh = (started.elapsed() * 10).clamp(MIN_FRESH, MAX_FRESH);
                (counted, Instant::now() + fresh)
            })
            .await;
        if counted.is_err() {
            self.forget(&c.campaign_id, &cell);
        }
        counted.map_err(|()| ApiError::Unavailable { what: "postgres" })
    }

    /// The count to share: the campaign's current one unless it expired or
    /// failed, else a new one.
    fn cell(&self, campaign_id: &str) -> Shared {
        let now = Instant::now();
        let mut counts = self.counts.lock().expect("remaining counts lock");
        let live = |c: &Shared| match c.get() {
            None => true,
            Some((counted, until)) => counted.is_ok() && *until > now,
        };
        if let Some(c) = counts.get(campaign_id).filter(|c| live(c)) {
            return c.clone();
        }
        if counts.len() >= REMEMBERED {
            counts.retain(|_, c| live(c));
        }
        let cell = Arc::new(OnceCell::new());
        counts.insert(campaign_id.to_owned(), cell.clone());
        cell
    }

    fn forget(&self, campaign_id: &str, cell: &Shared) {
        let mut counts = self.counts.lock().expect("remaining counts lock");
        if counts
            .get(campaign_id)
            .is_some_and(|c| Arc::ptr_eq(c, cell))
        {
            counts.remove(campaign_id);
        }
    }
}
