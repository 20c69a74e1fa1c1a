//! The routed API: each route computes its key from the string alone and
//! hands the request to the forwarder; bodies are buffered up to the limit.
//!
//! A request the router cannot route (malformed body, code or id, unknown
//! `home_region`) goes to this router's own region's node, which answers it
//! in the contract's order: authenticate and authorize first, then the
//! Idempotency-Key, then the body (the router holds no issuer keys, so it
//! cannot tell a user from an admin, and must not answer 400 or 404 to a
//! caller who would get 401 or 403). Those answers cost the node no
//! Postgres I/O.

use crate::error::RouterError;
use crate::forward::{forward, Outgoing};
use crate::plan::RouteKey;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use coupon_core::{CampaignId, Code, JobId, RedemptionId};
use serde_json::Value;
use std::collections::HashMap;

type Params = Path<HashMap<String, String>>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/coupons/validate", post(by_code))
        .route("/v1/coupons/redeem", post(by_code))
        .route("/v1/campaigns", post(create_campaign))
        .route("/v1/campaigns/{id}", get(by_campaign))
        .route("/v1/campaigns/{id}/pause", post(by_campaign))
        .route("/v1/campaigns/{id}/resume", post(by_campaign))
        .route("/v1/campaigns/{id}/reconcile", post(by_campaign))
        .route(
            "/v1/campaigns/{id}/codes",
            post(by_campaign).get(by_campaign),
        )
        .route("/v1/jobs/{id}", get(by_job))
        .route("/v1/redemptions/{id}", get(by_redemption))
        .route("/v1/redemptions/{id}/release", post(by_redemption))
        .route("/v1/events", get(events))
}

/// Bytes of an oversized body still read (and discarded) before answering
/// 413: a client that is still sending then sees the 413 instead of a reset.
const DRAIN_CAP: usize = 16 * 1024 * 1024;

/// Buffers the body (413 over the limit) and splits the request.
async fn take(state: &AppState, req: Request) -> Result<Outgoing, RouterError> {
    let limit = state.cfg.body_limit;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (mut parts, body) = req.into_parts();
    append_client_ip(&mut parts);
    let body = read_limited(
        body,
        if declared.is_some_and(|n| n > limit) {
            0
        } else {
            limit
        },
    )
    .await
    .ok_or(RouterError::PayloadTooLarge { limit })?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    Ok(Outgoing {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
    })
}

/// The whole body if it fits in `limit` bytes; otherwise `None`, after
/// draining up to [`DRAIN_CAP`] bytes so the 413 reaches the client.
async fn read_limited(body: axum::body::Body, limit: usize) -> Option<Bytes> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        seen += chunk.len();
        if seen > DRAIN_CAP {
            return None;
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    (seen <= limit).then(|| Bytes::from(buf))
}

/// Appends the client's address to `X-Forwarded-For`: nodes trust the last
/// hop of a request that carries a valid service token (ours), never a hop
/// the client wrote itself, for their per-IP rate limit.
fn append_client_ip(parts: &mut axum::http::request::Parts) {
    let Some(peer) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    else {
        return;
    };
    let ip = peer.0.ip().to_string();
    let value = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
        parts.headers.insert("x-forwarded-for", v);
    }
}

async fn routed(state: AppState, key: Option<RouteKey>, req: Request) -> Response {
    let key = key.unwrap_or_else(|| local(&state));
    let result = async {
        let out = take(&state, req).await?;
        Ok::<_, RouterError>(forward(&state, key, out).await)
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Validate and redeem: the slot of the body's `code`.
pub async fn by_code(State(state): State<AppState>, req: Request) -> Response {
    let out = match take(&state, req).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let code = coupon_api::coupons::code_of(&out.body).and_then(|c| Code::parse(&c).ok());
    let Some(code) = code else {
        return forward(&state, local(&state), out).await;
    };
    tracing::Span::current().record("slot", code.slot().get());
    forward(&state, RouteKey::Slot(code.slot().get()), out).await
}

/// Where requests the router cannot route go (see the module comment).
fn local(state: &AppState) -> RouteKey {
    RouteKey::Region(state.region().to_owned())
}

/// A vanity code decides the slot; otherwise `home_region` (or this
/// router's region) gets it and its node picks one of its own slots.
pub async fn create_campaign(State(state): State<AppState>, req: Request) -> Response {
    let out = match take(&state, req).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let json: Value = serde_json::from_slice(&out.body).unwrap_or(Value::Null);
    let vanity = json
        .get("code")
        .and_then(Value::as_str)
        .and_then(|c| Code::parse_vanity(c).ok());
    let key = match (vanity, json.get("home_region").and_then(Value::as_str)) {
        (Some(code), _) => RouteKey::Slot(code.slot().get()),
        (None, Some(home)) if crate::plan::known_region(&state, home) => {
            RouteKey::Region(home.to_owned())
        }
        _ => local(&state),
    };
    forward(&state, key, out).await
}

/// The slot of the path's id; `None` for an id that cannot be one (the
/// local node answers 404 after checking the caller).
fn id_key<T>(
    p: &HashMap<String, String>,
    parse: impl Fn(&str) -> Option<T>,
    slot: impl Fn(T) -> u16,
) -> Option<RouteKey> {
    p.get("id")
        .and_then(|id| parse(id))
        .map(|v| RouteKey::Slot(slot(v)))
}

pub async fn by_campaign(State(state): State<AppState>, Path(p): Params, req: Request) -> Response {
    let key = id_key(&p, |s| CampaignId::parse(s).ok(), |i| i.slot().get());
    routed(state, key, req).await
}

pub async fn by_job(State(state): State<AppState>, Path(p): Params, req: Request) -> Response {
    let key = id_key(&p, |s| JobId::parse(s).ok(), |i| i.slot().get());
    routed(state, key, req).await
}

pub async fn by_redemption(
    State(state): State<AppState>,
    Path(p): Params,
    req: Request,
) -> Response {
    let key = id_key(&p, |s| RedemptionId::parse(s).ok(), |i| i.slot().get());
    routed(state, key, req).await
}

/// The outbox feed is per region: `?region=` picks one (default: ours).
pub async fn events(State(state): State<AppState>, req: Request) -> Response {
    let region = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("region=").map(str::to_owned))
        .unwrap_or_else(|| state.region().to_owned());
    // An unknown region is the local node's to refuse (after the caller).
    let key = crate::plan::known_region(&state, &region).then_some(RouteKey::Region(region));
    routed(state, key, req).await
}
