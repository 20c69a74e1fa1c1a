//! `/v1/redemptions/{id}`: read and release (owner or admin).

use super::body::JsonBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::redemptions::{self, Redemption};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use coupon_api::coupons::ReleaseBody;
use coupon_core::RedemptionId;

pub use coupon_api::limits::MAX_REASON;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/redemptions/{redemption_id}", get(read))
        .route("/v1/redemptions/{redemption_id}/release", post(release))
}

fn parse(id: &str) -> ApiResult<RedemptionId> {
    RedemptionId::parse(id).map_err(|_| ApiError::NotFound("redemption"))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), redemption = %id))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Redemption>> {
    state.serve_slot(parse(&id)?.slot().get())?;
    let r = redemptions::by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("redemption"))?;
    if !caller.admin && caller.id != r.user_id {
        return Err(ApiError::NotFound("redemption"));
    }
    Ok(Json(r))
}

#[tracing::instrument(skip_all, fields(region = %state.region(), redemption = %id))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> ApiResult<Json<Redemption>> {
    let rid = parse(&id)?;
    state.serve_slot(rid.slot().get())?;
    crate::domain::text::plain("reason", &body.reason, MAX_REASON)?;
    Ok(Json(
        crate::redeem::release::release(&state, &caller, &rid, &body.reason).await?,
    ))
}
