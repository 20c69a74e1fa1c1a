//! Auth middleware: member JWTs on raft RPC routes, the admin token on admin routes.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::auth;
use crate::http::error::ApiError;
use crate::http::state::AppState;

fn authorization(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Rejects raft RPCs without a valid member token (401, counted).
pub async fn require_member(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Err(e) = s.member_auth.verify(authorization(&req)) {
        s.counters
            .member_auth_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "refused a raft RPC");
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
}

/// Rejects admin calls without the admin token (401, counted).
pub async fn require_admin(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !auth::admin_ok(&s.cfg.admin_token, authorization(&req)) {
        s.counters
            .admin_auth_failures
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
}
