//! HTTP surface of the router: the routed API (`proxy`), operations
//! (`ops`) and the OpenAPI document; this root merges them and adds the
//! request context (Request-Id, metrics).

pub mod openapi;
pub mod ops;
pub mod proxy;

use crate::error::RouterError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: &str = "request-id";
pub const COUPON_REGION: &str = "coupon-region";
/// Longest Request-Id passed on; longer ones are replaced, not truncated.
const MAX_REQUEST_ID: usize = 128;

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(proxy::router())
        .merge(ops::router())
        .merge(openapi::router())
        .fallback(|| async { RouterError::NotFound("route") })
        .method_not_allowed_fallback(|| async { RouterError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(state.clone(), context))
        .with_state(state)
}

/// Gives every request a `Request-Id` before it is forwarded (so retries
/// and re-plans carry the same one), echoes it, counts the answer, and marks
/// the router's own answers with its region.
async fn context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let valid = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic())
        });
    if !valid {
        let n: u128 = rand::random();
        let id = HeaderValue::from_str(&format!("req_{n:032x}")).expect("ascii");
        req.headers_mut().insert(REQUEST_ID, id);
    }
    let request_id = req.headers()[REQUEST_ID].clone();
    // A cheap clone (the path is shared), not a new string per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    // `slot` is filled in by the routes that know it: a field the span does
    // not declare is dropped by `record()` without a word.
    let span = tracing::info_span!("request", region = %state.region(),
        request_id = ?request_id, method = %req.method(), route = %route,
        slot = tracing::field::Empty);
    let mut resp = next.run(req).instrument(span).await;
    let status = resp.status();
    let status = status.as_str();
    state.metrics.inc(
        "coupon_router_requests_total",
        &[("route", route), ("status", status)],
    );
    state.metrics.observe_ms(
        "coupon_router_request_ms",
        &[("route", route)],
        started.elapsed().as_secs_f64() * 1e3,
    );
    let h = resp.headers_mut();
    h.entry(REQUEST_ID).or_insert(request_id);
    if !h.contains_key(COUPON_REGION) {
        if let Ok(v) = HeaderValue::from_str(state.region()) {
            h.insert(COUPON_REGION, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(state.region()) {
        h.insert("coupon-router", v);
    }
    resp
}
