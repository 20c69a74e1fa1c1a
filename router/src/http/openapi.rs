//! `GET /openapi.json`: the public API as routed (the node's operations),
//! plus the router's own (`/readyz`, `/v1/cluster/map`) and the feed's
//! `region` parameter — from the `coupon-api` crate, not the node.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn document() -> serde_json::Value {
    coupon_api::doc::router_document()
}

/// The document with the regions of the current map as the only valid
/// values of `home_region` and the feed's `region`.
fn served(state: &AppState) -> serde_json::Value {
    let regions: Vec<String> = state
        .maps()
        .map(|m| {
            m.current()
                .regions
                .iter()
                .map(|r| r.id.to_string())
                .collect()
        })
        .unwrap_or_default();
    coupon_api::doc::router_document_for(&regions)
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|State(state): State<AppState>| async move { Json(served(&state)) }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_router_document_lists_the_whole_public_api() {
        let doc = super::document();
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
