//! Validate: the redeem path without the claim and the commit. Reads only.

use super::resolve::{self, Resolved};
use super::Target;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
pub use coupon_api::coupons::Validation;

/// Validate `raw` for `user`, within [`super::READ_LIMIT`].
pub async fn validate(state: &AppState, user: &str, raw: &str) -> ApiResult<Validation> {
    super::bounded(checks(state, user, raw)).await
}

async fn checks(state: &AppState, user: &str, raw: &str) -> ApiResult<Validation> {
    let code = resolve::shape(raw)?;
    tracing::Span::current().record("slot", code.slot().get());
    state.serve_slot(code.slot().get())?;
    let r: Resolved = resolve::resolve(state, &code).await?;
    resolve::gate(&r, user)?;
    if r.used {
        return Err(ApiError::AlreadyRedeemed("this code was already used"));
    }
    let c = &r.campaign;
    let mine = state.uses().of(&c.campaign_id, user).await?;
    if mine >= c.per_user_limit as i64 {
        return Err(ApiError::AlreadyRedeemed(
            "this user reached the campaign's per-user limit",
        ));
    }
    let remaining = state.claim().remaining(c).await?;
    if remaining == Some(0) && !matches!(r.target, Target::Code { .. }) {
        return Err(ApiError::Exhausted);
    }
    Ok(Validation {
        valid: true,
        campaign_id: c.campaign_id.clone(),
        code: code.as_str().to_owned(),
        discount: c.discount.clone(),
        ends_at: c.ends_at,
        remaining,
    })
}
