//! Per-request context: `Request-Id` (echoed or created), `Coupon-Region`,
//! a tracing span, the service-token check and the ownership guard, and
//! request metrics labelled with the reason code. One middleware, not one
//! per concern: each router layer costs every request a boxed service
//! clone, a boxed future and a `Next`.

use super::body::BodyLimit;
use crate::error::ReasonCode;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: &str = "request-id";
pub const COUPON_REGION: &str = "coupon-region";
/// Longest Request-Id echoed back; longer ones are replaced, not truncated.
const MAX_REQUEST_ID: usize = 128;

pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    // A cheap clone (the path is shared), not a new string per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    req.extensions_mut().insert(BodyLimit(state.body_limit()));
    let span = tracing::info_span!(
        "request",
        region = %state.region(),
        request_id = %request_id,
        method = %req.method(),
        route = %route,
        // Filled in by the handler once it knows them; one span per
        // request, so the region is formatted once, not once per layer.
        slot = tracing::field::Empty,
        campaign = tracing::field::Empty,
    );
    // The service-token check and the ownership guard run here, in this
    // order, inside the request's span: one middleware instead of three.
    let mut resp = crate::service_auth::verify(&state, req, |req| {
        crate::ownership::guard::guard(&state, req, |req| next.run(req))
    })
    .instrument(span)
    .await;
    let status = resp.status();
    let status = status.as_str();
    let reason = resp.extensions().get::<ReasonCode>().map_or("ok", |r| r.0);
    let m = state.metrics();
    m.inc(
        "coupon_http_requests_total",
        &[("route", route), ("status", status), ("reason", reason)],
    );
    m.observe_ms(
        "coupon_http_request_ms",
        &[("route", route)],
        started.elapsed().as_secs_f64() * 1e3,
    );
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(state.region()) {
        headers.insert(COUPON_REGION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    resp
}

fn new_request_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("req_{n:032x}")
}
