//! Request parsing helpers: JSON bodies and query strings go through `ApiError`.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::http::forward::Incoming;

/// Longest accepted request id.
pub const MAX_REQUEST_ID_LEN: usize = 255;

/// Parses a JSON body; a missing or ill-typed field is named in `field`.
pub fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .map(str::to_owned);
        ApiError::InvalidRequest { field, detail: msg }
    })
}

/// Checks a client request id: 1–255 visible ASCII characters.
pub fn request_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "request_id",
            "request_id must be 1-255 visible ASCII characters",
        ))
    }
}

/// Checks that an endpoint is an absolute http(s) URL.
pub fn url(field: &str, value: &str) -> Result<(), ApiError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be an http(s) URL"),
        ))
    }
}

/// Keeps what forwarding needs from a request.
pub fn incoming(method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Incoming {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    Incoming {
        method,
        path_and_query,
        headers,
        body,
    }
}
