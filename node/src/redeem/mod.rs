//! The redeem path of docs/architecture.md §4 on the owning node: resolve the code,
//! gate the campaign, claim through the pluggable engine, commit in Postgres.

pub mod claim;
pub mod group_commit;
pub mod pg;
pub mod release;
pub mod replay_batch;
pub mod resolve;
pub mod validate;

use crate::domain::campaign::Campaign;
use crate::domain::idempotency::IdempotencyKey;
use crate::store::redemptions::Redemption;
use std::sync::Arc;

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
}

#[derive(Debug, Clone)]
pub struct RedeemOutcome {
    pub redemption: Redemption,
    /// True when this answers a retry of an earlier success.
    pub replayed: bool,
    /// The seat number or code Postgres took (None on replays).
    pub taken: Option<String>,
}
