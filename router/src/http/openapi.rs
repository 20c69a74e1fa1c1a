//! `GET /openapi.json`: the router's own endpoints and the routed ones,
//! generated from the handlers' annotations. The routed endpoints' bodies
//! are the node's (see the node's `/openapi.json` and API.md).

use super::{ops, proxy};
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coupon router",
        description = "Routes each request to the region owning its slot; see API.md."
    ),
    paths(proxy::by_code, proxy::create_campaign, ops::readyz, ops::map)
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
