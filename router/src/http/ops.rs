//! `/livez`, `/readyz`, `/metrics` and `GET /v1/cluster/map` (from the cache).

use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/cluster/map", get(map))
}

/// Ready when the map is loaded and every region's node accepts our
/// credentials; names what is not. `?scope=traffic` (the Kubernetes
/// readiness probe) leaves out peers that are merely unreachable: requests
/// for them fail closed one by one, and a partition elsewhere must not pull
/// this region's routers out of their Service. A peer that *rejects* our
/// credentials still fails it (our key is wrong: stop a bad rollout).
pub async fn readyz(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let traffic = match q.as_deref().and_then(|q| q.strip_prefix("scope=")) {
        None if q.as_deref().unwrap_or("").is_empty() => false,
        Some("all") => false,
        Some("traffic") => true,
        _ => {
            return crate::error::RouterError::InvalidRequest {
                field: Some("scope"),
                detail: "scope must be `all` or `traffic`".into(),
            }
            .into_response()
        }
    };
    let failing = crate::health::problems(&state, traffic);
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": failing.is_empty(), "region": state.region(), "failing": failing})),
    )
        .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The cached map in docs/api.md's shape; node URLs as this router uses them.
pub async fn map(State(state): State<AppState>) -> Response {
    let Some(maps) = state.maps() else {
        return crate::error::RouterError::Unavailable("ownership map not loaded yet".into())
            .into_response();
    };
    let mut view = (*maps.current()).clone();
    for r in &mut view.regions {
        if let Some(u) = state.node_url(r.id.as_str()) {
            r.node = u;
        }
    }
    Json(view).into_response()
}
