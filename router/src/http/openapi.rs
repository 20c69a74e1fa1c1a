//! `GET /openapi.json`: the public contract as the node's handlers generate
//! it (a router serves exactly the node API, forwarded), merged with the
//! router's own endpoints (`/readyz`, `/v1/cluster/map`).

use super::ops;
use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(ops::readyz, ops::map))]
struct RouterOps;

/// The node's document plus the router's own paths.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = coupon_node::http::openapi::ApiDoc::openapi();
    doc.info.title = "Coupon router".into();
    doc.info.description =
        Some("Routes each request to the node of the region owning its slot; see API.md.".into());
    doc.merge(RouterOps::openapi());
    doc
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_router_document_lists_the_whole_public_api() {
        let doc = serde_json::to_value(super::document()).unwrap();
        for path in [
            "/v1/campaigns",
            "/v1/campaigns/{campaign_id}",
            "/v1/coupons/validate",
            "/v1/coupons/redeem",
            "/v1/jobs/{job_id}",
            "/v1/redemptions/{redemption_id}/release",
            "/v1/cluster/map",
            "/readyz",
        ] {
            assert!(
                doc["paths"][path].is_object(),
                "router openapi lacks {path}"
            );
        }
    }
}
