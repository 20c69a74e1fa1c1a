//! The router's own answers (when it cannot or must not forward), rendered
//! as RFC 9457 problem+json like the node's. Each variant's doc names its
//! status and reason code (docs/api.md).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Seconds a client should wait before retrying a 503 from the router.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// 400 `invalid_request`.
    #[error("{detail}")]
    InvalidRequest {
        field: Option<&'static str>,
        detail: String,
    },
    /// 404 `unknown_code`: bad shape or check character; never forwarded.
    #[error("no such code")]
    UnknownCode,
    /// 404 `not_found`: an id that cannot be one, or an unknown route.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// 405 `method_not_allowed`, with `Allow` (added by the router layer).
    #[error("this method is not allowed on this route; see the Allow header")]
    MethodNotAllowed,
    /// 413 `payload_too_large`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 503 `owner_unreachable`, with `Retry-After`: the owning region did not
    /// answer in time, or refused this router's credentials.
    #[error("region {region} cannot be reached: {detail}")]
    OwnerUnreachable { region: String, detail: String },
    /// 503 `unavailable`, with `Retry-After`: no map yet, or the slot is moving.
    #[error("{0}")]
    Unavailable(String),
}

impl RouterError {
    pub fn status(&self) -> StatusCode {
        match self {
            RouterError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            RouterError::UnknownCode | RouterError::NotFound(_) => StatusCode::NOT_FOUND,
            RouterError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RouterError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RouterError::OwnerUnreachable { .. } | RouterError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RouterError::InvalidRequest { .. } => "invalid_request",
            RouterError::UnknownCode => "unknown_code",
            RouterError::NotFound(_) => "not_found",
            RouterError::MethodNotAllowed => "method_not_allowed",
            RouterError::PayloadTooLarge { .. } => "payload_too_large",
            RouterError::OwnerUnreachable { .. } => "owner_unreachable",
            RouterError::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for RouterError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({
            "type": format!("https://coupon.example/problems/{}", self.code()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "code": self.code(),
        });
        match &self {
            RouterError::InvalidRequest { field: Some(f), .. } => body["field"] = json!(f),
            RouterError::OwnerUnreachable { region, .. } => body["region"] = json!(region),
            _ => {}
        }
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}
