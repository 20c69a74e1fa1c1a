//! JSON request bodies: size-limited (413, never truncated) and parsed with
//! the failing field named, through the one error type.

use crate::domain::json;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(crate::config::DEFAULT_BODY_LIMIT, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::InvalidRequest {
                    field: None,
                    detail: rej.body_text(),
                }
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::InvalidRequest {
                field: None,
                detail: "request body is empty; send JSON".into(),
            });
        }
        json::parse(&bytes).map(JsonBody)
    }
}

/// The configured limit, left on the request so the 413 can name it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Query strings, with the failing parameter named.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(QueryParams)
            .map_err(|e| ApiError::InvalidRequest {
                field: None,
                detail: format!("bad query string: {e}"),
            })
    }
}
