//! In-process Bloom filter of issued generated codes (docs/architecture.md §4 step 3):
//! a never-issued code gets 404 without touching Postgres — but only while
//! the filter is known complete. Until then, and whenever another process
//! may have issued codes we have not loaded, lookups fall through to Postgres.

use coupon_core::slot::fnv1a64;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Hash functions per key: optimal for a 0.1 % false-positive rate.
const K: u64 = 10;
/// Bits per expected code for ~0.1 % false positives.
const BITS_PER_CODE: u64 = 15;
/// Rows per page while loading codes from Postgres.
const LOAD_PAGE: i64 = 50_000;
/// How often the filter checks whether codes were issued elsewhere.
const POLL: Duration = Duration::from_millis(500);
/// How long a "no" waits for Redis to confirm it before asking Postgres.
const CONFIRM_TIMEOUT: Duration = Duration::from_millis(250);
/// The loaded version when Redis held none.
const NO_VERSION: i64 = -1;
/// Redis key bumped by every generation job at start, after each batch and
/// at end.
pub const VERSION_KEY: &str = "coupon:codes:version";
/// Redis sorted set of generation jobs running anywhere in the region: job
/// id → lease expiry (ms since the epoch). A job renews its lease while it
/// runs; a job that crashed, or whose last Redis call failed, simply lets
/// it expire, so no filter stays untrusted for ever, and a flush can only
/// forget leases (filters reload on the version change), never drive a
/// count below zero.
pub const JOBS_KEY: &str = "coupon:codes:jobs";
/// How long a job's lease lasts without renewal.
pub const ISSUE_LEASE_MS: i64 = 5_000;
/// How often a running job renews its lease.
const ISSUE_RENEW: Duration = Duration::from_millis(1_500);

pub struct CodeFilter {
    bits: Vec<AtomicU64>,
    m: u64,
    complete: AtomicBool,
    /// The [`VERSION_KEY`] the last complete load started at.
    loaded: AtomicI64,
}

impl CodeFilter {
    pub fn new(capacity: u64) -> Arc<CodeFilter> {
        let m = (capacity.max(1024) * BITS_PER_CODE).next_multiple_of(64);
        let words = (m / 64) as usize;
        Arc::new(CodeFilter {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            m,
            complete: AtomicBool::new(false),
            loaded: AtomicI64::new(NO_VERSION),
        })
    }

    fn positions(&self, code: &str) -> impl Iterator<Item = u64> + '_ {
        let h1 = fnv1a64(code.as_bytes());
        let h2 = fnv1a64(&[code.as_bytes(), b"#bloom"].concat()) | 1;
        (0..K).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % self.m)
    }

    pub fn insert(&self, code: &str) {
        for p in self.positions(code) {
            self.bits[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::Relaxed);
        }
    }

    pub fn may_contain(&self, code: &str) -> bool {
        self.positions(code)
            .all(|p| self.bits[(p / 64) as usize].load(Ordering::Relaxed) & (1 << (p % 64)) != 0)
    }

    /// True only when a "no" from the filter can be trusted.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Stop trusting "no" until the loader's next full load.
    pub fn distrust(&self) {
        self.complete.store(false, Ordering::Release);
    }

    /// A "no" from a complete filter: never issued as of the last load
    /// (confirm it with [`CodeFilter::still_current`] before answering).
    pub fn rejects(&self, code: &str) -> bool {
        self.is_complete() && !self.may_contain(code)
    }

    /// Redis's word that no code was issued since the last load: its
    /// version is the one loaded and no job holds a lease. A node learns of
    /// another node's job only at its next poll, so without this a code a
    /// peer had just issued (and reported done) could be answered 404 for
    /// up to a poll interval. One Redis round trip per rejected probe still
    /// spares Postgres every never-issued code.
    pub async fn still_current(&self, redis: &redis::aio::ConnectionManager) -> bool {
        matches!(probe(redis, CONFIRM_TIMEOUT).await,
            Some((version, 0)) if version == self.loaded.load(Ordering::Acquire))
    }
}

/// Redis's view of code issuing: the current [`VERSION_KEY`] ([`NO_VERSION`]
/// when absent) and how many jobs hold a live lease; None when Redis did
/// not answer within `wait`.
async fn probe(redis: &redis::aio::ConnectionManager, wait: Duration) -> Option<(i64, i64)> {
    let mut r = redis.clone();
    let mut pipe = redis::pipe();
    pipe.get(VERSION_KEY)
        .zcount(JOBS_KEY, crate::burst::reconcile::now_ms(), "+inf");
    let answer = pipe.query_async::<(Option<i64>, Option<i64>)>(&mut r);
    let (version, running) = tokio::time::timeout(wait, answer).await.ok()?.ok()?;
    Some((version.unwrap_or(NO_VERSION), running.unwrap_or(0)))
}

/// A generation job's announcement to every node's filter (see
/// [`JOBS_KEY`]): renewed in the background until [`IssueLease::end`];
/// dropped without `end` (the job failed or its Redis call did), it expires.
pub struct IssueLease {
    redis: redis::aio::ConnectionManager,
    job: String,
    renew: tokio::task::JoinHandle<()>,
}

impl IssueLease {
    pub async fn start(redis: redis::aio::ConnectionManager, job: &str) -> IssueLease {
        let job = job.to_owned();
        let announce = |mut r: redis::aio::ConnectionManager, job: String| async move {
            let expires = crate::burst::reconcile::now_ms() + ISSUE_LEASE_MS;
            let mut p = redis::pipe();
            p.zadd(JOBS_KEY, &job, expires).ignore();
            // Drop leases long expired (crashed jobs), so the set stays small.
            p.zrembyscore(JOBS_KEY, "-inf", expires - 10 * ISSUE_LEASE_MS)
                .ignore();
            if let Err(e) = p.query_async::<()>(&mut r).await {
                // Filters cannot see this job: they stop trusting "no" only
                // on the version bump; the job's batches bump it too.
                tracing::warn!(error = %e, "could not renew the code-issuing lease");
            }
        };
        announce(redis.clone(), job.clone()).await;
        bump_version(&redis).await;
        let renew = tokio::spawn({
            let (redis, job) = (redis.clone(), job.clone());
            async move {
                loop {
                    tokio::time::sleep(ISSUE_RENEW).await;
                    announce(redis.clone(), job.clone()).await;
                }
            }
        });
        IssueLease { redis, job, renew }
    }

    /// The job is over: retire the lease and tell filters to load.
    pub async fn end(self) {
        self.renew.abort();
        let mut r = self.redis.clone();
        let mut p = redis::pipe();
        p.zrem(JOBS_KEY, &self.job)
            .ignore()
            .incr(VERSION_KEY, 1)
            .ignore();
        if let Err(e) = p.query_async::<()>(&mut r).await {
            tracing::warn!(error = %e, "could not retire the code-issuing lease; it expires");
        }
    }
}

impl Drop for IssueLease {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

/// Codes landed: filters that loaded before must load again.
pub async fn bump_version(redis: &redis::aio::ConnectionManager) {
    let mut r = redis.clone();
    if let Err(e) = redis::cmd("INCR")
        .arg(VERSION_KEY)
        .query_async::<i64>(&mut r)
        .await
    {
        // Without the version the filters cannot prove completeness once
        // they see it change; the lease still keeps them from trusting.
        tracing::warn!(error = %e, "could not announce new codes to the bloom filters");
    }
}

/// Load every code, then keep the filter complete: whenever a generation job
/// holds a live lease anywhere, mark it incomplete and load what is new.
pub fn spawn_loader(filter: Arc<CodeFilter>, db: PgPool, redis: redis::aio::ConnectionManager) {
    tokio::spawn(async move {
        let mut since: Option<chrono::DateTime<chrono::Utc>> = None;
        loop {
            let Some((version, running)) = probe(&redis, POLL).await else {
                // Cannot tell whether codes were issued elsewhere: stop trusting "no".
                filter.complete.store(false, Ordering::Release);
                tokio::time::sleep(POLL).await;
                continue;
            };
            if running > 0 {
                // A job is issuing codes somewhere: load once it is done.
                filter.complete.store(false, Ordering::Release);
                tokio::time::sleep(POLL).await;
                continue;
            }
            let stable = since.is_some() && version == filter.loaded.load(Ordering::Acquire);
            if !stable {
                filter.complete.store(false, Ordering::Release);
                let started = chrono::Utc::now();
                // Rows of a job that finished just before `since` may commit late: overlap.
                let from = since.map(|s| s - chrono::Duration::seconds(30));
                match load(&filter, &db, from).await {
                    Ok(()) => {
                        since = Some(started);
                        filter.loaded.store(version, Ordering::Release);
                        filter.complete.store(true, Ordering::Release);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "loading codes into the bloom filter failed")
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    });
}

async fn load(
    filter: &CodeFilter,
    db: &PgPool,
    from: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), sqlx::Error> {
    match from {
        Some(from) => load_since(filter, db, from).await,
        None => load_all(filter, db).await,
    }
}

/// Rows handled between yields to the runtime. A stream whose socket
/// buffer is full never returns Pending, so without this a loader reading
/// a million codes holds its worker for seconds, and every task queued
/// behind it (the region-lease renewal among them) waits that long: the
/// node once answered 503 for 2.7 s after a 1 M-code job
/// (docs/benchmarks.md, "Code generation").
const YIELD_EVERY: usize = 1024;

impl CodeFilter {
    /// Inserts a page of codes read from Postgres, yielding to the runtime
    /// every [`YIELD_EVERY`] codes.
    pub(crate) async fn insert_page(&self, page: &[String]) {
        for chunk in page.chunks(YIELD_EVERY) {
            chunk.iter().for_each(|code| self.insert(code));
            tokio::task::yield_now().await;
        }
    }
}

/// Every code, in pages along the primary key.
async fn load_all(filter: &CodeFilter, db: &PgPool) -> Result<(), sqlx::Error> {
    let mut after = String::new();
    loop {
        let page: Vec<String> =
            sqlx::query_scalar("SELECT code FROM codes WHERE code > $1 ORDER BY code LIMIT $2")
                .bind(&after)
                .bind(LOAD_PAGE)
                .fetch_all(db)
                .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.clone();
        filter.insert_page(&page).await;
    }
}

/// The codes created since `from`, streamed in one query: the BRIN index
/// on `created_at` (migration 0007) reads only the recent block ranges, so
/// the cost follows the new codes, not the table.
async fn load_since(
    filter: &CodeFilter,
    db: &PgPool,
    from: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query_scalar::<_, String>("SELECT code FROM codes WHERE created_at >= $1")
        .bind(from)
        .fetch(db);
    let mut n = 0usize;
    while let Some(code) = rows.try_next().await? {
        filter.insert(&code);
        n += 1;
        if n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = CodeFilter::new(10_000);
        for i in 0..10_000 {
            f.insert(&format!("CODE{i}"));
        }
        assert!((0..10_000).all(|i| f.may_contain(&format!("CODE{i}"))));
        let fp = (0..100_000)
            .filter(|i| f.may_contain(&format!("OTHER{i}")))
            .count();
        assert!(fp < 500, "{fp} false positives in 100,000");
    }

    #[test]
    fn an_incomplete_filter_rejects_nothing() {
        let f = CodeFilter::new(100);
        assert!(!f.rejects("ANYTHING"));
        f.complete.store(true, Ordering::Release);
        assert!(f.rejects("ANYTHING"));
    }
}
