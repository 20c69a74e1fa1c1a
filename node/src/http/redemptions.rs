//! `/v1/redemptions/{id}`: read and release (owner or admin).

use super::body::JsonBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::redemptions::{self, Redemption};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use coupon_core::RedemptionId;
use serde::Deserialize;
use utoipa::ToSchema;

pub const MAX_REASON: usize = 255;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/redemptions/{redemption_id}", get(read))
        .route("/v1/redemptions/{redemption_id}/release", post(release))
}

fn parse(id: &str) -> ApiResult<RedemptionId> {
    RedemptionId::parse(id).map_err(|_| ApiError::NotFound("redemption"))
}

#[utoipa::path(get, path = "/v1/redemptions/{redemption_id}",
    params(("redemption_id" = String, Path)), responses((status = 200, body = Redemption)))]
#[tracing::instrument(skip_all, fields(region = %state.region(), redemption = %id))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Redemption>> {
    parse(&id)?;
    let r = redemptions::by_id(state.db(), &id)
        .await?
        .ok_or(ApiError::NotFound("redemption"))?;
    if !caller.admin && caller.id != r.user_id {
        return Err(ApiError::NotFound("redemption"));
    }
    Ok(Json(r))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Why the use is given back, e.g. `refund`.
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/redemptions/{redemption_id}/release", request_body = ReleaseBody,
    params(("redemption_id" = String, Path)), responses((status = 200, body = Redemption)))]
#[tracing::instrument(skip_all, fields(region = %state.region(), redemption = %id))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> ApiResult<Json<Redemption>> {
    let rid = parse(&id)?;
    crate::domain::text::plain("reason", &body.reason, MAX_REASON)?;
    Ok(Json(
        crate::redeem::release::release(&state, &caller, &rid, &body.reason).await?,
    ))
}
