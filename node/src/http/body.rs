//! JSON request bodies: size-limited (413, never truncated) and parsed with
//! the failing field named, through the one error type.

use crate::domain::json;
use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(crate::config::DEFAULT_BODY_LIMIT, |l| l.0);
        // Read here under the limit rather than through axum's
        // `DefaultBodyLimit` layer: a router layer costs every request a
        // boxed service clone. A declared or streamed length over the
        // limit is refused whole, never truncated.
        let bytes = match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(ApiError::PayloadTooLarge { limit })
            }
            Err(e) => {
                return Err(ApiError::InvalidRequest {
                    field: None,
                    detail: format!("the request body could not be read: {e}"),
                })
            }
        };
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
