//! The node's side of routing: a request a router sent (it carries
//! `Coupon-Slot-Epoch`) for a slot the map gives to another region at that
//! epoch or later is refused early with 421, and every 421 `misdirected`
//! answer — early or from the fencing check in Postgres — carries the owner,
//! epoch and state this node's map knows (like openraft's ForwardToLeader).

use crate::error::ApiError;
use crate::http::coupons::SLOT_EPOCH_HEADER;
use crate::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coupon_core::{CampaignId, Code, JobId, RedemptionId};
use coupon_raft::model::SlotState;
use serde_json::Value;

/// Largest 421 body read back to add the hint (they are tiny).
const MAX_PROBLEM_BODY: usize = 64 * 1024;

/// Refuses early what the map gives elsewhere, then hands the request to
/// `next` (called from the request-context middleware, like the service
/// token check).
pub async fn guard<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let epoch = req
        .headers()
        .get(SLOT_EPOCH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let (req, slot) = match epoch {
        Some(_) => match slot_of(req, state.body_limit()).await {
            Ok(x) => x,
            Err(resp) => return resp,
        },
        None => (req, None),
    };
    let maps = state.regional().maps().cloned();
    if let (Some(slot), Some(epoch), Some(maps)) = (slot, epoch, &maps) {
        if let Some(o) = maps.owner_of(u32::from(slot)) {
            let elsewhere = o.region.as_str() != state.region();
            if elsewhere && o.state == SlotState::Active && o.epoch as i64 >= epoch {
                tracing::info!(region = %state.region(), slot, owner = %o.region, "routed to the wrong region");
                let resp = ApiError::Misdirected {
                    slot,
                    owner: None,
                    epoch: None,
                }
                .into_response();
                return add_hint(resp, maps).await;
            }
        }
    }
    let resp = next(req).await;
    match (&maps, resp.status()) {
        (Some(maps), StatusCode::MISDIRECTED_REQUEST) => add_hint(resp, maps).await,
        _ => resp,
    }
}

/// The slot a request addresses, from its path or (validate, redeem) its
/// body's `code`; the body is buffered and put back. Every routed request
/// passes here, so nothing is copied that can be borrowed.
async fn slot_of(req: Request, limit: usize) -> Result<(Request, Option<u16>), Response> {
    let path = req.uri().path();
    let mut seg = path.trim_start_matches('/').split('/');
    let from_path = match (seg.next(), seg.next(), seg.next()) {
        (Some("v1"), Some("campaigns"), Some(id)) => CampaignId::parse(id).ok().map(|i| i.slot()),
        (Some("v1"), Some("jobs"), Some(id)) => JobId::parse(id).ok().map(|i| i.slot()),
        (Some("v1"), Some("redemptions"), Some(id)) => {
            RedemptionId::parse(id).ok().map(|i| i.slot())
        }
        _ => None,
    };
    if from_path.is_some() || !path.starts_with("/v1/coupons/") {
        return Ok((req, from_path.map(|s| s.get())));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit }.into_response())?;
    let slot = coupon_api::coupons::code_of(&bytes)
        .and_then(|c| Code::parse(&c).ok())
        .map(|c| c.slot().get());
    Ok((Request::from_parts(parts, Body::from(bytes)), slot))
}

/// Fills `owner`, `epoch` and `state` of a 421 problem from the map.
async fn add_hint(resp: Response, maps: &coupon_raft::client::MapClient) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_PROBLEM_BODY).await else {
        return ApiError::Internal("421 body unreadable".into()).into_response();
    };
    let mut problem: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let owner = problem["slot"]
        .as_u64()
        .and_then(|s| maps.owner_of(s as u32));
    if let Some(o) = owner {
        problem["owner"] = Value::from(o.region.as_str());
        problem["epoch"] = Value::from(o.epoch);
        let state = match o.state {
            SlotState::Active => "active",
            SlotState::Moving => "moving",
            SlotState::FailingOver => "failing_over",
        };
        problem["state"] = Value::from(state);
    }
    let body = problem.to_string();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
