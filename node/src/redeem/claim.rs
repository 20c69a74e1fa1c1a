//! The claim step, pluggable (DESIGN.md §4 step 5): the Postgres-only engine
//! lives here; the Redis burst engine wraps the same transaction.

use super::{pg, RedeemOutcome, RedeemRequest};
use crate::domain::campaign::Campaign;
use crate::error::ApiResult;
use sqlx::PgPool;
use std::future::Future;
use std::pin::Pin;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait ClaimEngine: Send + Sync {
    /// Claim and commit one redemption, or replay the caller's earlier one.
    fn redeem<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, ApiResult<RedeemOutcome>>;

    /// Uses left for validate; `None` when unlimited.
    fn remaining<'a>(&'a self, campaign: &'a Campaign) -> BoxFut<'a, ApiResult<Option<i64>>>;
}

/// Postgres decides everything: right for low-traffic campaigns and the
/// fallback when Redis is unavailable.
pub struct PostgresClaim {
    pub db: PgPool,
}

impl ClaimEngine for PostgresClaim {
    fn redeem<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, ApiResult<RedeemOutcome>> {
        Box::pin(pg::redeem_tx(&self.db, req, pg::Hint::default()))
    }

    fn remaining<'a>(&'a self, campaign: &'a Campaign) -> BoxFut<'a, ApiResult<Option<i64>>> {
        Box::pin(pg::remaining(&self.db, campaign))
    }
}
