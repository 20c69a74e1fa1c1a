//! Region leases and takeovers over HTTP (docs/failover.md).
//!
//! - `POST /v1/lease/renew` — a node renews its region's lease (lease token).
//! - `GET /v1/cluster/leases` — the leader's judgement of every lease.
//! - `POST /v1/cluster/failover/begin` — an operator starts a takeover
//!   (admin token); refused while the leader judges the lease valid, unless
//!   `force` (the operator fenced the region by hand) or `planned`.
//! - `POST /v1/cluster/failover/complete` — the promoted standby commits
//!   the takeover (lease token).
//! - `POST /v1/cluster/standby` — name a region's standby (admin token).

use axum::body::Bytes;
use axum::extract::{Request as HttpRequest, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::ServerState;
use serde::Deserialize;
use serde_json::json;

use crate::auth;
use crate::controller;
use crate::http::admin;
use crate::http::error::ApiError;
use crate::http::extract::{self, json};
use crate::http::forward;
use crate::http::state::AppState;
use crate::http::write::propose;
use crate::model::{RegionId, Standby};
use crate::state_machine::{Command, Request};

/// Routes for nodes (lease token or admin token).
pub fn node_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/lease/renew", post(renew))
        .route("/v1/cluster/failover/complete", post(complete))
        .layer(from_fn_with_state(state, require_lease))
}

/// Admin-token routes.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/v1/cluster/failover/begin", post(begin))
        .route("/v1/cluster/standby", post(set_standby))
}

/// Public reads.
pub fn public_router() -> Router<AppState> {
    Router::new().route("/v1/cluster/leases", get(leases))
}

async fn require_lease(
    State(s): State<AppState>,
    req: HttpRequest,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let ok = auth::admin_ok(&s.cfg.admin_token, header)
        || s.cfg
            .lease_token
            .as_ref()
            .is_some_and(|t| auth::admin_ok(t, header));
    if !ok {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
}

fn leading(s: &AppState) -> bool {
    s.raft.metrics().borrow().state == ServerState::Leader
}

#[derive(Deserialize)]
struct RenewBody {
    region: RegionId,
    timeline: u64,
    acked_lsn: u64,
    #[serde(default)]
    degraded: bool,
}

#[tracing::instrument(skip_all)]
async fn renew(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RenewBody = json(&body)?;
    let req = Request {
        request_id: format!("lease-{}-{}", b.region, uuid_like()),
        command: Command::RenewLease {
            region: b.region,
            timeline: b.timeline,
            acked_lsn: b.acked_lsn,
            degraded: b.degraded,
        },
    };
    let mut r = propose(&s, req, &extract::incoming(m, &u, h, body)).await?;
    // The node times its lease with the group's numbers, not its own guess.
    for (k, v) in [
        ("coupon-lease-ms", s.cfg.lease_ms),
        ("coupon-lease-margin-ms", s.cfg.lease_margin_ms),
    ] {
        if !r.headers().contains_key(k) {
            r.headers_mut().insert(k, v.into());
        }
    }
    Ok(r)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{t:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn leases(State(s): State<AppState>, m: Method, u: Uri, h: HeaderMap) -> Response {
    if !leading(&s) && !h.contains_key(forward::FORWARDED_HEADER) {
        let incoming = extract::incoming(m, &u, h, Bytes::new());
        if let Ok(r) = forward::to_leader(&s, s.leader_hint(), &incoming).await {
            return r;
        }
    }
    let since = *s.leader_since.lock().unwrap_or_else(|p| p.into_inner());
    let judged = controller::judge(&s, since);
    Json(json!({
        "leader": leading(&s),
        "lease_ms": s.cfg.lease_ms,
        "margin_ms": s.cfg.lease_margin_ms,
        "policy": format!("{:?}", s.cfg.failover).to_lowercase(),
        "leases": judged,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct BeginBody {
    request_id: String,
    region: RegionId,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    planned: bool,
}

#[tracing::instrument(skip_all, fields(region))]
async fn begin(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: BeginBody = json(&body)?;
    extract::request_id(&b.request_id)?;
    tracing::Span::current().record("region", b.region.as_str());
    let incoming = extract::incoming(m, &u, h, body);
    let lease_seq = if b.force || b.planned {
        None
    } else {
        // The lapse is judged on the leader's clock only.
        if !leading(&s) {
            return forward::to_leader(&s, s.leader_hint(), &incoming).await;
        }
        let since = *s.leader_since.lock().unwrap_or_else(|p| p.into_inner());
        let judged = controller::judge(&s, since);
        match judged.iter().find(|j| j.region == b.region) {
            Some(j) if j.lapsed => Some(j.seq),
            Some(j) => {
                return Ok(lease_valid(&b.region, j.silent_ms, s.cfg.takeover_after()));
            }
            None => {
                return Err(ApiError::invalid(
                    "region",
                    format!(
                        "region {} never held a lease: fence it by hand, then use force",
                        b.region
                    ),
                ))
            }
        }
    };
    let cmd = Command::BeginFailover {
        region: b.region,
        lease_seq,
        planned: b.planned,
    };
    propose(
        &s,
        Request {
            request_id: b.request_id,
            command: cmd,
        },
        &incoming,
    )
    .await
}

fn lease_valid(region: &RegionId, silent_ms: u64, after: std::time::Duration) -> Response {
    let wait = (after.as_millis() as u64).saturating_sub(silent_ms);
    let body = json!({
        "type": "about:blank",
        "title": "the region's lease may still be valid",
        "status": 409,
        "code": "lease_valid",
        "detail": format!(
            "region {region} renewed its lease {silent_ms} ms ago; a takeover may start in {wait} ms (or use force after fencing it by hand)"
        ),
        "retry_after_ms": wait,
    });
    (
        StatusCode::CONFLICT,
        [("content-type", "application/problem+json")],
        Json(body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CompleteBody {
    request_id: String,
    region: RegionId,
    timeline: u64,
}

#[tracing::instrument(skip_all)]
async fn complete(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: CompleteBody = json(&body)?;
    let cmd = Command::CompleteFailover {
        region: b.region,
        timeline: b.timeline,
    };
    admin::run(s, b.request_id, cmd, (m, u, h, body)).await
}

#[derive(Deserialize)]
struct StandbyBody {
    request_id: String,
    region: RegionId,
    standby: Option<Standby>,
}

#[tracing::instrument(skip_all)]
async fn set_standby(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: StandbyBody = json(&body)?;
    if let Some(sb) = &b.standby {
        extract::url("standby.node", &sb.node)?;
    }
    let cmd = Command::SetStandby {
        region: b.region,
        standby: b.standby,
    };
    admin::run(s, b.request_id, cmd, (m, u, h, body)).await
}
