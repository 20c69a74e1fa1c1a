//! `GET /openapi.json`, generated from the handlers' annotations.

use super::{campaigns, codes, coupons, events, redemptions};
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coupon node",
        description = "Regional coupon node; see API.md for the contract."
    ),
    paths(
        campaigns::create,
        campaigns::read,
        campaigns::pause,
        campaigns::resume,
        codes::generate,
        codes::job,
        codes::export,
        coupons::validate,
        coupons::redeem,
        redemptions::read,
        redemptions::release,
        events::feed,
    )
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
