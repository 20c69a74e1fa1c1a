//! Forwarding of writes and linearizable reads from a follower to the leader.
//!
//! A follower proxies the request once (marked with `coupon-raft-forwarded`); a member that
//! receives a forwarded request it cannot serve answers 503 `no_leader` with a hint instead of
//! forwarding again, so requests never loop.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use openraft::error::ForwardToLeader;

use crate::http::error::{ApiError, LeaderHint};
use crate::http::state::AppState;
use crate::types::{Node, NodeId};

/// Marks a request a member forwarded to the leader.
pub const FORWARDED_HEADER: &str = "coupon-raft-forwarded";

/// The leader named in an openraft forward-to-leader error.
pub fn hint(f: &ForwardToLeader<NodeId, Node>) -> Option<LeaderHint> {
    Some(LeaderHint {
        id: f.leader_id?,
        addr: f.leader_node.as_ref()?.addr.clone(),
    })
}

/// A request as received, kept so it can be replayed against the leader.
pub struct Incoming {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends `req` to `leader` and relays its answer.
pub async fn to_leader(
    state: &AppState,
    leader: Option<LeaderHint>,
    req: &Incoming,
) -> Result<Response, ApiError> {
    let leader = match leader {
        Some(l) if l.id != state.node_id => l,
        other => return Err(ApiError::NoLeader { leader: other }),
    };
    if req.headers.contains_key(FORWARDED_HEADER) {
        return Err(ApiError::NoLeader {
            leader: Some(leader),
        });
    }
    let timeout = state.cfg.write_timeout().max(state.cfg.read_deadline())
        + std::time::Duration::from_secs(1);
    let mut out = state
        .http
        .request(
            req.method.clone(),
            format!("{}{}", leader.addr, req.path_and_query),
        )
        .header(FORWARDED_HEADER, state.node_id.to_string())
        .timeout(timeout)
        .body(req.body.clone());
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = req.headers.get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let resp = out
        .send()
        .await
        .map_err(|e| ApiError::ForwardFailed(e.to_string()))?;
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let body = resp
        .bytes()
        .await
        .map_err(|e| ApiError::ForwardFailed(e.to_string()))?;
    let mut relayed = (status, body).into_response();
    let h = relayed.headers_mut();
    if let Some(ct) = content_type {
        h.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(ra) = retry_after {
        h.insert(header::RETRY_AFTER, ra);
    }
    if let Ok(v) = HeaderValue::from_str(&leader.addr) {
        h.insert("coupon-raft-leader", v);
    }
    Ok(relayed)
}
