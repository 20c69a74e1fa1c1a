//! `/livez`, `/readyz`, `/metrics`.

use super::body::QueryParams;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

/// Each readiness probe of a store gives up after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// What a readiness check asks.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyQuery {
    /// `all` (default): every store and the ownership sync. `traffic`: can
    /// this process take requests — Redis is left out, because without it
    /// the node serves from Postgres (docs/architecture.md §3.2), so a Kubernetes
    /// readiness probe must not pull every node of a region when Redis dies.
    #[serde(default)]
    scope: ReadyScope,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReadyScope {
    #[default]
    All,
    Traffic,
}

/// Ready when every store answers; names what does not.
pub async fn readyz(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ReadyQuery>,
) -> impl IntoResponse {
    let mut failing = Vec::new();
    let pg = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(state.db())).await;
    if !matches!(pg, Ok(Ok(_))) {
        failing.push("postgres");
    }
    let mut redis = state.redis();
    let pong = tokio::time::timeout(
        PROBE_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await;
    if !matches!(pong, Ok(Ok(_))) && q.scope == ReadyScope::All {
        failing.push("redis");
    }
    failing.extend(state.regional().not_ready());
    if state.lease().check().is_err() {
        failing.push(if state.lease().fenced() {
            "region taken over (this is the old primary)"
        } else {
            "region lease"
        });
    }
    if !state.owned().is_valid() {
        failing.push("slot ownership (postgres listener)");
    } else if state.owned().warming() > 0 {
        failing.push("slot warm-up");
    }
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body =
        json!({"ready": failing.is_empty(), "region": state.region(), "failing": failing});
    if state.lease().is_enabled() {
        body["lease_remaining_ms"] = json!(state.lease().remaining_ms());
        let st = tokio::time::timeout(
            PROBE_TIMEOUT,
            crate::ownership::replication::status(state.db()),
        )
        .await;
        if let Ok(Ok(st)) = st {
            // Degraded is served, but shown: commits are not replicated first.
            body["replication"] = json!({"mode": if st.degraded { "async (degraded)" } else { "sync" },
                "sync_standbys": st.sync_standbys, "standby_lag_bytes": st.lag_bytes,
                "timeline": st.timeline});
        }
    }
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}
