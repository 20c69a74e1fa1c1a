//! Per-user and per-IP rate limits: GCRA in Redis, one script (docs/architecture.md §4
//! step 2). When Redis cannot answer, requests pass: the limits protect
//! capacity, while Postgres protects correctness.

use super::reconcile::now_ms;
use super::scripts::scripts;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One limit: `rate` per second, `burst` at once. A rate of 0 disables it.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub rate: f64,
    pub burst: u32,
}

/// Check `scope:id` against `limit`; 429 with Retry-After when over.
pub async fn check(state: &AppState, scope: &str, id: &str, limit: Limit) -> ApiResult<()> {
    if limit.rate <= 0.0 {
        return Ok(());
    }
    let interval_ms = (1000.0 / limit.rate).max(1.0).round() as i64;
    let mut r = state.redis();
    let mut call = scripts().rate_limit.key(format!("rl:{scope}:{id}"));
    call.arg(now_ms()).arg(interval_ms).arg(limit.burst.max(1));
    match tokio::time::timeout(super::REDIS_TIMEOUT, call.invoke_async::<i64>(&mut r)).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(wait_ms)) => {
            state
                .metrics()
                .inc("coupon_rate_limited_total", &[("scope", scope)]);
            Err(ApiError::RateLimited {
                retry_after_secs: (wait_ms as u64).div_ceil(1000).max(1),
            })
        }
        _ => {
            state
                .metrics()
                .inc("coupon_rate_limit_unchecked_total", &[("scope", scope)]);
            Ok(())
        }
    }
}
