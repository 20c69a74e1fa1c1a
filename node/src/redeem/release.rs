//! Release on refund, by the campaign's `release_on_refund` policy.
//! Idempotent: releasing a released redemption answers it unchanged.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{campaigns, outbox, redemptions, slots};
use coupon_core::RedemptionId;

pub async fn release(
    state: &AppState,
    caller: &Caller,
    id: &RedemptionId,
    reason: &str,
) -> ApiResult<redemptions::Redemption> {
    let mut tx = state.db().begin().await?;
    slots::fence(&mut tx, id.slot().get(), None).await?;
    let found = redemptions::lock_for_release(&mut tx, id.as_str())
        .await?
        .ok_or(ApiError::NotFound("redemption"))?;
    let mut r = found.redemption;
    if !caller.admin && caller.id != r.user_id {
        return Err(ApiError::NotFound("redemption"));
    }
    if r.released_at.is_some() {
        return Ok(r);
    }
    let campaign = campaigns::by_id(state.db(), &r.campaign_id)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("redemption of missing campaign {}", r.campaign_id))
        })?;
    if !campaign.release_on_refund {
        return Err(ApiError::ReleaseNotAllowed);
    }
    r.released_at = Some(redemptions::mark_released(&mut tx, id.as_str(), reason).await?);
    if let Some(code) = &found.pool_code {
        sqlx::query("UPDATE codes SET used = false WHERE code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
    }
    let data = serde_json::to_value(&r).expect("redemption serializes");
    let event_id = format!("{}:coupon.released", r.redemption_id);
    outbox::append(&mut tx, &event_id, "coupon.released", &r.campaign_id, &data).await?;
    tx.commit().await?;
    state.campaigns().forget(&r.campaign_id);
    let token = found
        .pool_code
        .clone()
        .or_else(|| found.seat_no.map(|s| s.to_string()));
    if let Err(e) = state
        .claim()
        .released(&campaign, token.as_deref(), &r.user_id)
        .await
    {
        // Until the reconciler sees it, the freed use is only missing from
        // Redis: temporary under-redemption, never over-redemption.
        tracing::warn!(error = %e, "could not return the released use to redis");
    }
    Ok(r)
}
