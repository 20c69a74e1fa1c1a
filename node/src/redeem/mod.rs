//! The redeem path of docs/architecture.md §4 on the owning node: resolve the code,
//! gate the campaign, claim through the pluggable engine, commit in Postgres.

pub mod claim;
pub mod group_commit;
pub mod pg;
pub mod refusals;
pub mod release;
pub mod remaining;
pub mod replay_batch;
pub mod resolve;
pub mod seat_counts;
pub mod seats;
pub mod uses_batch;
pub mod validate;

use crate::domain::campaign::Campaign;
use crate::domain::idempotency::IdempotencyKey;
use crate::error::{ApiError, ApiResult};
use crate::store::redemptions::Redemption;
use std::future::Future;
use std::sync::Arc;

/// How long the reads before a claim (resolving the code, validate's
/// counts) may wait for Postgres: past it the answer is 503 `unavailable`,
/// not a request held until the caller or TCP gives up. Reads change
/// nothing, so cutting one short is always safe.
pub const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `reads`, or 503 `unavailable` once it outlives [`READ_LIMIT`].
pub async fn bounded<T>(reads: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
    tokio::time::timeout(READ_LIMIT, reads)
        .await
        .unwrap_or(Err(ApiError::Unavailable { what: "postgres" }))
}

/// What a redemption consumes besides a per-user use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A seat of a shared campaign (none when the campaign is unlimited).
    Shared,
    /// The claim code of a pool campaign: the next unused pool code.
    PoolClaim,
    /// One generated code of a pool or unique campaign.
    Code {
        code: String,
        intended_user: Option<String>,
    },
}

/// A redeem request that passed every check up to the claim.
#[derive(Debug, Clone)]
pub struct RedeemRequest {
    pub campaign: Arc<Campaign>,
    pub user: String,
    pub key: IdempotencyKey,
    pub request_hash: String,
    pub order_id: String,
    /// The code as typed, normalized.
    pub code: String,
    pub target: Target,
    /// Epoch the router routed at, if any; the fence refuses another.
    pub epoch: Option<i64>,
    /// Raised when this redeem's COMMIT is sent (shared by its clones).
    pub committing: CommitMark,
    /// The caller's rate limits, for an engine that charges them with its
    /// claim ([`claim::ClaimEngine::charges_limits`]); off otherwise.
    pub limits: crate::burst::ratelimit::Buckets,
}

/// Tells the caller that a redeem's COMMIT was sent: from then on its
/// outcome may be decided without the caller hearing it (the commit waits
/// for the region's synchronous standby), so only that wait is bounded by
/// the commit wait. Before it, a redeem queued for a Postgres connection or
/// behind a group has decided nothing: its wait is load, and answering it
/// "outcome unknown" turned a busy pool into 503s (found by
/// `concurrency::five_thousand_users…` on the Postgres-only engine on a
/// loaded machine; test: `concurrency::a_redeem_queued_for_a_connection…`).
#[derive(Debug, Clone, Default)]
pub struct CommitMark(Arc<tokio::sync::Notify>);

/// Called just before the COMMIT of a transaction holding these redeems
/// (one on the single path, a group's settled members on the grouped one).
pub(crate) async fn about_to_commit<'a>(reqs: impl IntoIterator<Item = &'a RedeemRequest>) {
    // A slow transaction, for the commit-wait test: `return(MS)` holds it MS
    // ms on a timer. A `sleep(MS)` action blocks a runtime worker, and a
    // task woken onto that worker (the handler waiting for an earlier
    // commit) waited with it: the test read "outcome unknown" once in CI.
    if let Some(ms) = held_before_commit() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    for req in reqs {
        req.committing.raise();
    }
}

/// How long a test's `before_commit` failpoint holds the transaction, in
/// ms (`return(MS)`); `None` in production builds and when unset.
fn held_before_commit() -> Option<u64> {
    fail::fail_point!("before_commit", |ms| ms.and_then(|ms| ms.parse().ok()));
    None
}

impl CommitMark {
    fn raise(&self) {
        // A stored permit: a caller that starts waiting later still wakes.
        self.0.notify_one();
    }

    /// Resolves once [`about_to_commit`] named this redeem.
    pub async fn raised(&self) {
        self.0.notified().await
    }
}

#[derive(Debug, Clone)]
pub struct RedeemOutcome {
    pub redemption: Redemption,
    /// True when this answers a retry of an earlier success.
    pub replayed: bool,
    /// The seat number or code Postgres took (None on replays).
    pub taken: Option<String>,
}
