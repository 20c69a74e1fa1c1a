//! HTTP surface of the node: each resource module owns its routes; this
//! root merges them and adds the cross-cutting layers.

pub mod body;
pub mod campaigns;
pub mod codes;
pub mod coupons;
pub mod events;
pub mod layers;
pub mod openapi;
pub mod ops;
pub mod redemptions;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(campaigns::router())
        .merge(codes::router())
        .merge(coupons::router())
        .merge(redemptions::router())
        .merge(events::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(crate::service_auth::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::request_context,
        ))
        .with_state(state)
}
