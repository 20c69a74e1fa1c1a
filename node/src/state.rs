//! Shared application state handed to every handler.

use crate::auth::cache::TokenCache;
use crate::auth::Verifier;
use crate::cache::CampaignCache;
use crate::metrics::Metrics;
use crate::redeem::claim::ClaimEngine;
use crate::store::attempts::Attempt;
use coupon_core::service_token::ServiceClaims;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub region: String,
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
    pub verifier: Verifier,
    /// Service tokens that verified, until their `exp` (router → node calls).
    pub service_tokens: TokenCache<ServiceClaims>,
    pub campaigns: CampaignCache,
    /// Validate's count of a user's uses, batched.
    pub uses: crate::redeem::uses_batch::UsesReader,
    pub metrics: Arc<Metrics>,
    pub claim: Arc<dyn ClaimEngine>,
    pub body_limit: usize,
    pub attempts: tokio::sync::mpsc::Sender<Attempt>,
    pub codes: Arc<crate::bloom::CodeFilter>,
    pub user_limit: crate::burst::ratelimit::Limit,
    pub ip_limit: crate::burst::ratelimit::Limit,
    /// Ownership map, its sync and the service key ring (multi-region).
    pub regional: Arc<crate::ownership::Regional>,
    /// In-memory `slot_ownership`: what this node may answer for now.
    pub owned: Arc<crate::ownership::view::OwnedSlots>,
    /// The region lease: no slot is served while it is not held.
    pub lease: Arc<crate::ownership::lease::RegionLease>,
    /// Longest wait for a redeem's commit before 503 (outcome unknown).
    pub commit_wait: std::time::Duration,
}

impl AppState {
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    pub fn region(&self) -> &str {
        &self.0.region
    }
    pub fn uses(&self) -> &crate::redeem::uses_batch::UsesReader {
        &self.0.uses
    }
    pub fn db(&self) -> &PgPool {
        &self.0.db
    }
    pub fn redis(&self) -> redis::aio::ConnectionManager {
        self.0.redis.clone()
    }
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }
    pub fn service_tokens(&self) -> &TokenCache<ServiceClaims> {
        &self.0.service_tokens
    }
    pub fn campaigns(&self) -> &CampaignCache {
        &self.0.campaigns
    }
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    pub fn claim(&self) -> &dyn ClaimEngine {
        self.0.claim.as_ref()
    }
    pub fn body_limit(&self) -> usize {
        self.0.body_limit
    }
    pub fn limits(
        &self,
    ) -> (
        crate::burst::ratelimit::Limit,
        crate::burst::ratelimit::Limit,
    ) {
        (self.0.user_limit, self.0.ip_limit)
    }
    pub fn codes(&self) -> &crate::bloom::CodeFilter {
        &self.0.codes
    }
    pub fn attempts(&self) -> &tokio::sync::mpsc::Sender<Attempt> {
        &self.0.attempts
    }
    pub fn regional(&self) -> &Arc<crate::ownership::Regional> {
        &self.0.regional
    }
    pub fn owned(&self) -> &Arc<crate::ownership::view::OwnedSlots> {
        &self.0.owned
    }
    /// Ok(epoch) while this node owns `slot` (docs/architecture.md §3.4):
    /// every answer about a slot's data, refusals and reads included, is
    /// given only then; otherwise 421 with the owner hint, or 503 while the
    /// slot warms up after a move.
    pub fn lease(&self) -> &crate::ownership::lease::RegionLease {
        &self.0.lease
    }

    pub fn commit_wait(&self) -> std::time::Duration {
        self.0.commit_wait
    }

    pub fn serve_slot(&self, slot: u16) -> crate::error::ApiResult<i64> {
        if let Err(e) = self.0.lease.check() {
            self.0.metrics.inc("coupon_lease_refusals_total", &[]);
            return Err(e);
        }
        let r = self.0.owned.check(slot);
        if r.is_err() {
            self.0.metrics.inc("coupon_not_owner_refusals_total", &[]);
        }
        r
    }
}
