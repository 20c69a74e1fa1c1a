//! The one error type of the HTTP API, rendered as RFC 9457 problem+json in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state_machine::{RejectCode, Rejection};
use crate::types::NodeId;

/// Where the current leader is, when known (sent with `no_leader` answers).
#[derive(Debug, Clone, Serialize)]
pub struct LeaderHint {
    pub id: NodeId,
    pub addr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed JSON or a bad field (`field` names it).
    #[error("{detail}")]
    InvalidRequest {
        field: Option<String>,
        detail: String,
    },
    /// 401 `unauthorized`: missing or bad member/admin token.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// 400/404/409 with the state machine's reason code: the command was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// 409 `already_initialized`: the raft group was bootstrapped before.
    #[error("the raft group is already initialized")]
    AlreadyInitialized,
    /// 409 `membership_change_refused`.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// 503 `no_leader` (+ `Retry-After`): this member cannot serve it and knows no usable
    /// leader; `leader` is a hint when one is known.
    #[error("no leader available")]
    NoLeader { leader: Option<LeaderHint> },
    /// 503 `unavailable` (+ `Retry-After`): a linearizable read could not be confirmed in time.
    #[error("could not confirm leadership with a quorum: {0}")]
    ReadUnavailable(String),
    /// 503 `write_timeout` (+ `Retry-After`): not committed in time; outcome unknown, retry
    /// with the same request id.
    #[error("write not confirmed in time; retry with the same request_id")]
    WriteTimeout,
    /// 503 `leader_unreachable` (+ `Retry-After`): forwarding to the leader failed.
    #[error("forwarding to the leader failed: {0}")]
    ForwardFailed(String),
    /// 500 `internal`: logged once here, never echoed.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, String) {
        use StatusCode as S;
        match self {
            Self::InvalidRequest { .. } => (S::BAD_REQUEST, "invalid_request".into()),
            Self::Unauthorized => (S::UNAUTHORIZED, "unauthorized".into()),
            Self::Rejected(r) => {
                let status = match r.code {
                    RejectCode::InvalidCommand | RejectCode::SlotOutOfRange => S::BAD_REQUEST,
                    RejectCode::UnknownRegion => S::NOT_FOUND,
                    _ => S::CONFLICT,
                };
                let code = serde_json::to_value(r.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "rejected".into());
                (status, code)
            }
            Self::AlreadyInitialized => (S::CONFLICT, "already_initialized".into()),
            Self::Membership(_) => (S::CONFLICT, "membership_change_refused".into()),
            Self::NoLeader { .. } => (S::SERVICE_UNAVAILABLE, "no_leader".into()),
            Self::ReadUnavailable(_) => (S::SERVICE_UNAVAILABLE, "unavailable".into()),
            Self::WriteTimeout => (S::SERVICE_UNAVAILABLE, "write_timeout".into()),
            Self::ForwardFailed(_) => (S::SERVICE_UNAVAILABLE, "leader_unreachable".into()),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal".into()),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<&'a LeaderHint>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(msg) = &self {
            tracing::error!(error = %msg, "internal error");
        }
        let (field, leader) = match &self {
            Self::InvalidRequest { field, .. } => (field.as_deref(), None),
            Self::NoLeader { leader } => (None, leader.as_ref()),
            _ => (None, None),
        };
        let problem = Problem {
            kind: format!("https://coupon.dev/problems/{code}"),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail: self.to_string(),
            code: &code,
            field,
            leader,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(l) = leader {
            if let Ok(v) = HeaderValue::from_str(&l.addr) {
                h.insert("coupon-raft-leader", v);
            }
        }
        resp
    }
}
