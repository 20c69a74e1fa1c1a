//! The node's one error type and its single mapping to RFC 9457 problem+json.
//!
//! Each variant's doc names its HTTP status and reason code (docs/api.md). Store
//! and internal errors are logged once here and never echoed to the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed JSON or a missing / ill-typed field.
    #[error("{detail}")]
    InvalidRequest {
        field: Option<String>,
        detail: String,
    },
    /// 400 `idempotency_key_missing`.
    #[error("redeem needs an Idempotency-Key header of 1-255 visible characters")]
    IdempotencyKeyMissing,
    /// 401 `unauthorized`.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`.
    #[error("this role may not call this endpoint")]
    Forbidden,
    /// 403 `audience_mismatch`.
    #[error("this code is not meant for this user")]
    AudienceMismatch,
    /// 404 `unknown_code`.
    #[error("no such code")]
    UnknownCode,
    /// 404 `not_found`.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// 405 `method_not_allowed`, with `Allow` (added by the router layer).
    #[error("this method is not allowed on this route; see the Allow header")]
    MethodNotAllowed,
    /// 409 `already_redeemed`.
    #[error("{0}")]
    AlreadyRedeemed(&'static str),
    /// 409 `idempotency_in_flight`.
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInFlight,
    /// 409 `release_not_allowed`.
    #[error("this campaign does not release uses on refund")]
    ReleaseNotAllowed,
    /// 410 `exhausted`.
    #[error("no uses left in this campaign")]
    Exhausted,
    /// 410 `expired`.
    #[error("the campaign ended")]
    Expired,
    /// 410 `not_started`.
    #[error("the campaign has not started")]
    NotStarted,
    /// 410 `paused`.
    #[error("the campaign is paused")]
    Paused,
    /// 421 `misdirected`: carries the owner this node knows, so a router can act.
    #[error("this region does not own slot {slot} at the requested epoch")]
    Misdirected {
        slot: u16,
        owner: Option<String>,
        epoch: Option<i64>,
    },
    /// 413 `payload_too_large`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422 `idempotency_key_reused`.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// 503 `unavailable`, with `Retry-After`: a store of this region is down.
    #[error("{what} is unavailable")]
    Unavailable { what: &'static str },
    /// 503 `unavailable`: the commit did not finish within the commit wait
    /// (it waits for the region's synchronous standby). It may still land:
    /// never reported as a success; a retry with the same key tells.
    #[error("the outcome of this redeem is unknown: its commit is still waiting for the region's synchronous standby; retry with the same Idempotency-Key")]
    OutcomeUnknown,
    /// 500 `internal`: logged, never echoed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidRequest { .. } | IdempotencyKeyMissing => StatusCode::BAD_REQUEST,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Forbidden | AudienceMismatch => StatusCode::FORBIDDEN,
            UnknownCode | NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AlreadyRedeemed(_) | IdempotencyInFlight | ReleaseNotAllowed => StatusCode::CONFLICT,
            Exhausted | Expired | NotStarted | Paused => StatusCode::GONE,
            Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable { .. } | OutcomeUnknown => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The reason code of docs/api.md.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidRequest { .. } => "invalid_request",
            IdempotencyKeyMissing => "idempotency_key_missing",
            Unauthorized(_) => "unauthorized",
            Forbidden => "forbidden",
            AudienceMismatch => "audience_mismatch",
            UnknownCode => "unknown_code",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            AlreadyRedeemed(_) => "already_redeemed",
            IdempotencyInFlight => "idempotency_in_flight",
            ReleaseNotAllowed => "release_not_allowed",
            Exhausted => "exhausted",
            Expired => "expired",
            NotStarted => "not_started",
            Paused => "paused",
            Misdirected { .. } => "misdirected",
            PayloadTooLarge { .. } => "payload_too_large",
            IdempotencyKeyReused => "idempotency_key_reused",
            RateLimited { .. } => "rate_limited",
            Unavailable { .. } | OutcomeUnknown => "unavailable",
            Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        self.status().canonical_reason().unwrap_or("Error")
    }
}

/// Seconds a client should wait before retrying a 503.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// The problem document, serialized straight from borrowed parts: every
/// refused attempt of a burst answers one, so no `Value` tree and no
/// intermediate strings. Fields in alphabetical order, as the answer was
/// written before (a `serde_json::Map` sorts its keys).
#[derive(serde::Serialize)]
struct Problem<'a> {
    code: &'static str,
    #[serde(serialize_with = "as_display")]
    detail: Detail<'a>,
    /// Misdirected only, where it is always present (null when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<u16>,
    status: u16,
    title: &'static str,
    #[serde(rename = "type", serialize_with = "as_display")]
    kind: ProblemType,
}

/// The caller-facing text: the error's own, or for internal errors a fixed
/// one (their text may name internals; it is logged instead).
enum Detail<'a> {
    Error(&'a ApiError),
    Internal,
}

impl std::fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Detail::Error(e) => e.fmt(f),
            Detail::Internal => {
                f.write_str("internal error; see the node's logs with this Request-Id")
            }
        }
    }
}

struct ProblemType(&'static str);

impl std::fmt::Display for ProblemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "https://coupon.example/problems/{}", self.0)
    }
}

fn as_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                Detail::Internal
            }
            other => Detail::Error(other),
        };
        let mut problem = Problem {
            code: self.code(),
            detail,
            epoch: None,
            field: None,
            owner: None,
            slot: None,
            status: status.as_u16(),
            title: self.title(),
            kind: ProblemType(self.code()),
        };
        match &self {
            ApiError::InvalidRequest { field: Some(f), .. } => problem.field = Some(f),
            ApiError::Misdirected { slot, owner, epoch } => {
                problem.slot = Some(*slot);
                problem.owner = Some(owner.as_deref());
                problem.epoch = Some(*epoch);
            }
            _ => {}
        }
        let mut body = Vec::with_capacity(256);
        if let Err(e) = serde_json::to_writer(&mut body, &problem) {
            // Writing to a Vec fails only if a Display impl does.
            tracing::error!(error = %e, "problem document not written");
        }
        let retry = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable { .. } | ApiError::OutcomeUnknown => {
                Some(UNAVAILABLE_RETRY_AFTER_SECS)
            }
            _ => None,
        };
        let mut resp = Response::new(axum::body::Body::from(body));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp.extensions_mut().insert(ReasonCode(self.code()));
        resp
    }
}

/// The reason code, left on the response for the metrics middleware.
#[derive(Clone, Copy, Debug)]
pub struct ReasonCode(pub &'static str);

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "postgres unavailable");
                ApiError::Unavailable { what: "postgres" }
            }
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|c| {
                    c == "57014" || c.starts_with("57P") || c.starts_with("08")
                }) =>
            {
                // statement_timeout (overloaded), shutdown or a lost connection:
                // the store is unavailable, not broken.
                tracing::warn!(error = %e, "postgres unavailable");
                ApiError::Unavailable { what: "postgres" }
            }
            other => ApiError::Internal(format!("postgres: {other}")),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> ApiError {
        tracing::warn!(error = %e, "redis unavailable");
        ApiError::Unavailable { what: "redis" }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    async fn problem(e: ApiError) -> (StatusCode, Option<String>, Value) {
        let resp = e.into_response();
        let status = resp.status();
        let retry = resp
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn problem_documents_carry_every_field_of_the_contract() {
        let (s, _, v) = problem(ApiError::InvalidRequest {
            field: Some("order_id".into()),
            detail: "say \"why\"".into(),
        })
        .await;
        assert_eq!(s, 400);
        assert_eq!(
            v,
            json!({"type": "https://coupon.example/problems/invalid_request",
                   "title": "Bad Request", "status": 400, "detail": "say \"why\"",
                   "code": "invalid_request", "field": "order_id"})
        );
        // A misdirected answer always names owner and epoch, null when unknown.
        let (s, _, v) = problem(ApiError::Misdirected {
            slot: 7,
            owner: None,
            epoch: None,
        })
        .await;
        assert_eq!(s, 421);
        assert_eq!(v["slot"], 7);
        assert!(v["owner"].is_null() && v.get("owner").is_some(), "{v}");
        assert!(v["epoch"].is_null() && v.get("epoch").is_some(), "{v}");
        let (_, _, v) = problem(ApiError::Misdirected {
            slot: 7,
            owner: Some("eu".into()),
            epoch: Some(3),
        })
        .await;
        assert_eq!(
            (v["owner"].clone(), v["epoch"].clone()),
            (json!("eu"), json!(3))
        );
        // Internal text is logged, never echoed.
        let (s, _, v) = problem(ApiError::Internal("secret dsn".into())).await;
        assert_eq!(s, 500);
        assert!(!v.to_string().contains("secret"), "{v}");
        assert!(v.get("field").is_none() && v.get("slot").is_none(), "{v}");
        let (s, retry, v) = problem(ApiError::RateLimited {
            retry_after_secs: 3,
        })
        .await;
        assert_eq!((s.as_u16(), retry.as_deref()), (429, Some("3")));
        assert_eq!(v["code"], "rate_limited");
    }
}
