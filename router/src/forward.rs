//! The forwarder: one request to the owning region's node with the slot's
//! epoch (`Coupon-Slot-Epoch`) and a service token; the user's
//! `Authorization`, `Idempotency-Key` and `Request-Id` pass untouched, so a
//! re-plan after a 421 is the same request. Fails closed: no answer within
//! the region's timeout → 503 `owner_unreachable`; never served locally.

use crate::error::RouterError;
use crate::plan::{plan, RouteKey, Target};
use crate::state::{AppState, Hint, PeerStatus};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::service_token::{SERVICE_AUTH_FAILED_HEADER, SERVICE_TOKEN_HEADER};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The pooled HTTP/1.1 client the router forwards with.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

pub fn client(connect_timeout: Duration) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// A node's whole answer (read within the forward timeout).
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

pub const SLOT_EPOCH_HEADER: &str = "coupon-slot-epoch";
/// Request headers passed to the node as they came.
const FORWARDED: [&str; 6] = [
    "authorization",
    "idempotency-key",
    "request-id",
    "content-type",
    "accept",
    "x-forwarded-for",
];
/// Response headers that describe the hop, not the answer.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
];
/// How long a 421 without a usable hint may wait for a fresh map.
const REFRESH_WAIT: Duration = Duration::from_secs(1);

/// A request as the router received it.
pub struct Outgoing {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn forward(state: &AppState, key: RouteKey, out: Outgoing) -> Response {
    match forward_planned(state, &key, &out).await {
        Ok(resp) => resp,
        Err(e) => {
            state
                .metrics
                .inc("coupon_router_errors_total", &[("code", e.code())]);
            e.into_response()
        }
    }
}

async fn forward_planned(
    state: &AppState,
    key: &RouteKey,
    out: &Outgoing,
) -> Result<Response, RouterError> {
    let mut target = plan(state, key)?;
    for attempt in 0..2 {
        let resp = send(state, &target, out).await?;
        if resp.status != StatusCode::MISDIRECTED_REQUEST {
            return Ok(relay(state, &target, resp));
        }
        state.metrics.inc(
            "coupon_router_misdirected_total",
            &[("region", &target.region)],
        );
        let problem: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let slot = target.slot.unwrap_or(u16::MAX);
        tracing::info!(region = %state.region(), slot, to = %target.region, hint = %problem, "421 from node");
        if attempt == 1 || problem["state"] == "moving" || target.moving {
            return Err(RouterError::Unavailable(format!(
                "slot {slot} is moving between regions; retry with the same Idempotency-Key"
            )));
        }
        match (
            problem["owner"].as_str(),
            problem["epoch"].as_u64(),
            target.slot,
        ) {
            (Some(owner), Some(epoch), Some(slot)) => state.learn(
                slot,
                Hint {
                    region: owner.to_owned(),
                    epoch,
                },
            ),
            _ => {
                if let Some(maps) = state.maps() {
                    let _ = tokio::time::timeout(REFRESH_WAIT, maps.refresh()).await;
                }
            }
        }
        let next = plan(state, key)?;
        if next.region == target.region && next.epoch == target.epoch {
            return Err(RouterError::Unavailable(format!(
                "slot {slot}: the owner is being decided; retry with the same Idempotency-Key"
            )));
        }
        target = next;
    }
    unreachable!("the loop returns on its second pass")
}

async fn send(state: &AppState, t: &Target, out: &Outgoing) -> Result<Answer, RouterError> {
    let unreachable = |detail: String| RouterError::OwnerUnreachable {
        region: t.region.clone(),
        detail,
    };
    let cap = state.cap(&t.region);
    let wait = Duration::from_millis(state.cfg.queue_wait_ms);
    let _permit = match tokio::time::timeout(wait, cap.acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            state.metrics.inc(
                "coupon_router_owner_unreachable_total",
                &[("region", &t.region), ("why", "in_flight_cap")],
            );
            return Err(unreachable(
                "too many requests in flight to this region".into(),
            ));
        }
    };
    let timeout = state.cfg.timeout_for(&t.region);
    let mut rb = hyper::Request::builder()
        .method(out.method.clone())
        .uri(format!("{}{}", t.node, out.path_and_query))
        .header(SERVICE_TOKEN_HEADER, state.signer.token(&t.region));
    for name in FORWARDED {
        if let Some(v) = out.headers.get(name) {
            rb = rb.header(name, v);
        }
    }
    if let Some(e) = t.epoch {
        rb = rb.header(SLOT_EPOCH_HEADER, e);
    }
    let req = rb
        .body(Full::new(out.body.clone()))
        .map_err(|e| unreachable(format!("cannot build the request: {e}")))?;
    let started = Instant::now();
    // The whole answer, body included, within the region's timeout.
    let exchange = async {
        let resp = state.fwd.request(req).await.map_err(|e| {
            if e.is_connect() {
                ("connect", e.to_string())
            } else {
                ("transport", e.to_string())
            }
        })?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| ("transport", format!("answer cut short: {e}")))?
            .to_bytes();
        Ok::<_, (&str, String)>(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    let res = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(("timeout", "no answer in time".to_owned())),
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    state
        .metrics
        .observe_ms("coupon_router_forward_ms", &[("region", &t.region)], ms);
    match res {
        Ok(r)
            if r.status == StatusCode::UNAUTHORIZED
                && r.headers.contains_key(SERVICE_AUTH_FAILED_HEADER) =>
        {
            let why = String::from_utf8_lossy(&r.body).into_owned();
            tracing::error!(region = %state.region(), peer = %t.region, %why, "peer rejected our service token");
            state.metrics.inc(
                "coupon_router_peer_auth_rejected_total",
                &[("peer", &t.region)],
            );
            state.peers.lock().expect("peers lock").insert(
                t.region.clone(),
                (Instant::now(), PeerStatus::Rejected(why)),
            );
            Err(unreachable(
                "the owning region refused this router's service credentials".into(),
            ))
        }
        Ok(r) => Ok(r),
        Err((why, error)) => {
            state.metrics.inc(
                "coupon_router_owner_unreachable_total",
                &[("region", &t.region), ("why", why)],
            );
            tracing::warn!(region = %state.region(), owner = %t.region, slot = ?t.slot, %error, "owner unreachable");
            Err(unreachable(format!(
                "no answer from its node within {} ms ({why})",
                timeout.as_millis()
            )))
        }
    }
}

/// The node's answer, status, headers (incl. `Coupon-Region`) and body.
fn relay(state: &AppState, t: &Target, resp: Answer) -> Response {
    state.metrics.inc(
        "coupon_router_forwarded_total",
        &[("region", &t.region), ("status", resp.status.as_str())],
    );
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = resp.status;
    for (name, value) in resp.headers.iter() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}
