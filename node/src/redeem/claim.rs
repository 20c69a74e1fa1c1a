//! The claim step, pluggable (docs/architecture.md §4 step 5): the Postgres-only engine
//! lives here; the Redis burst engine wraps the same transaction.

use super::{pg, RedeemOutcome, RedeemRequest};
use crate::domain::campaign::Campaign;
use crate::error::ApiResult;
use sqlx::PgPool;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait ClaimEngine: Send + Sync {
    /// Claim and commit one redemption, or replay the caller's earlier one.
    fn redeem<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, ApiResult<RedeemOutcome>>;

    /// Whether this engine's claim charges the caller's rate limits itself
    /// (with `RedeemRequest::limits`), in the same round trip. The caller
    /// charges them otherwise, and for a redeem refused before its claim.
    fn charges_limits(&self) -> bool {
        false
    }

    /// Whether a claim under this caller's key is in flight in the engine's
    /// own store (Postgres-side locks are checked by the caller).
    fn in_flight<'a>(&'a self, _req: &'a RedeemRequest) -> BoxFut<'a, bool> {
        Box::pin(async { false })
    }

    /// Uses left for validate; `None` when unlimited.
    fn remaining<'a>(&'a self, campaign: &'a Campaign) -> BoxFut<'a, ApiResult<Option<i64>>>;

    /// A campaign was created: build whatever the engine keeps for it.
    fn seed<'a>(&'a self, _campaign: &'a Arc<Campaign>) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Pause/resume: mirror the campaign's state.
    fn campaign_changed<'a>(&'a self, _campaign: &'a Campaign) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Codes were stored in Postgres; returns how many the engine's store
    /// verifiably holds (`None` when it keeps none).
    fn codes_added<'a>(
        &'a self,
        _campaign: &'a Campaign,
        _codes: &'a [String],
    ) -> BoxFut<'a, ApiResult<Option<i64>>> {
        Box::pin(async { Ok(None) })
    }

    /// A redemption was released in Postgres: its seat or code is free again.
    fn released<'a>(
        &'a self,
        _campaign: &'a Campaign,
        _token: Option<&'a str>,
        _user: &'a str,
    ) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Compare the engine's store with Postgres and repair it.
    fn reconcile<'a>(
        &'a self,
        _campaign: &'a Campaign,
    ) -> BoxFut<'a, ApiResult<serde_json::Value>> {
        Box::pin(async {
            Ok(serde_json::json!({"engine": "postgres", "note": "nothing to reconcile"}))
        })
    }
}

/// Postgres decides everything: right for low-traffic campaigns and the
/// fallback when Redis is unavailable.
pub struct PostgresClaim {
    pub db: PgPool,
    pub seats: super::seats::SeatFrontier,
    pub remaining: super::remaining::RemainingCounts,
}

impl ClaimEngine for PostgresClaim {
    fn redeem<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, ApiResult<RedeemOutcome>> {
        Box::pin(async move {
            let out = pg::redeem_tx(&self.db, &self.seats, req, pg::Hint::default()).await?;
            // The same crash point as the burst engine's, so the replay of a
            // lost reply is tested on both engines.
            fail::fail_point!("after_commit_before_reply", |_| Err(
                crate::error::ApiError::Unavailable {
                    what: "node (failpoint)"
                }
            ));
            Ok(out)
        })
    }

    fn remaining<'a>(&'a self, campaign: &'a Campaign) -> BoxFut<'a, ApiResult<Option<i64>>> {
        Box::pin(self.remaining.of(campaign))
    }
}
