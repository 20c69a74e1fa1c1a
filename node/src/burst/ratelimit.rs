//! Per-user and per-IP rate limits: GCRA in Redis (docs/architecture.md §4
//! step 2). When Redis cannot answer, requests pass: the limits protect
//! capacity, while Postgres protects correctness.
//!
//! A redeem that reaches the Redis claim has its limits charged by the
//! claim script itself, in the same round trip ([`Buckets`]); every other
//! call (validate, a redeem on the Postgres-only engine, a redeem refused
//! before its claim) is charged by [`check`]. Both use the same keys, so a
//! user has one budget whichever way a call was charged.

use super::reconcile::now_ms;
use super::scripts::scripts;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::state::AppState;

/// One limit: `rate` per second, `burst` at once. A rate of 0 disables it.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub rate: f64,
    pub burst: u32,
}

/// One bucket as a script takes it; `interval_ms` 0 means the limit is off.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    pub key: String,
    pub interval_ms: i64,
    pub burst: u32,
}

impl Bucket {
    fn new(scope: &str, id: &str, limit: Limit) -> Bucket {
        if limit.rate <= 0.0 {
            return Bucket::default();
        }
        Bucket {
            key: format!("rl:{scope}:{id}"),
            interval_ms: (1000.0 / limit.rate).max(1.0).round() as i64,
            burst: limit.burst.max(1),
        }
    }
}

/// The caller's buckets for the claim script to charge; all off by
/// default (a request charged already, or not at all).
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub user: Bucket,
    pub ip: Bucket,
}

impl Buckets {
    pub fn of(state: &AppState, user: &str, ip: &str) -> Buckets {
        let (per_user, per_ip) = state.limits();
        Buckets {
            user: Bucket::new("user", user, per_user),
            ip: Bucket::new("ip", ip, per_ip),
        }
    }
}

/// The 429 of a limited call (the script's wait in ms), counted.
pub fn limited(metrics: &Metrics, scope: &str, wait_ms: u64) -> ApiError {
    metrics.inc("coupon_rate_limited_total", &[("scope", scope)]);
    ApiError::RateLimited {
        retry_after_secs: wait_ms.div_ceil(1000).max(1),
    }
}

/// Check `scope:id` against `limit`; 429 with Retry-After when over.
pub async fn check(state: &AppState, scope: &str, id: &str, limit: Limit) -> ApiResult<()> {
    let b = Bucket::new(scope, id, limit);
    if b.interval_ms == 0 {
        return Ok(());
    }
    let mut r = state.redis();
    let mut call = scripts().rate_limit.key(b.key);
    call.arg(now_ms()).arg(b.interval_ms).arg(b.burst);
    match tokio::time::timeout(super::REDIS_TIMEOUT, call.invoke_async::<i64>(&mut r)).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(wait_ms)) => Err(limited(state.metrics(), scope, wait_ms as u64)),
        _ => {
            state
                .metrics()
                .inc("coupon_rate_limit_unchecked_total", &[("scope", scope)]);
            Ok(())
        }
    }
}
