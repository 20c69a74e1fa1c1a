//! `GET /v1/cluster/map`: linearizable by default, `?stale=ok` local, `?since=` long-poll.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use openraft::error::{CheckIsLeaderError, RaftError};
use serde::Deserialize;
use tokio::time::{sleep, timeout_at, Instant};

use crate::http::error::{ApiError, LeaderHint};
use crate::http::forward::{self, Incoming};
use crate::http::state::AppState;
use crate::map_view::MapView;

/// Pause between `ensure_linearizable` attempts.
const READ_RETRY: Duration = Duration::from_millis(100);

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/cluster/map", get(get_map))
}

#[derive(Debug, Deserialize)]
struct MapQuery {
    /// `ok` serves the local applied map without a leadership check.
    stale: Option<String>,
    /// Long-poll: answer once the map version is greater than this.
    since: Option<u64>,
    /// Long-poll wait, capped by the configured watch timeout.
    timeout_ms: Option<u64>,
}

/// Where a linearizable read can be served.
enum Read {
    Local,
    Forward(LeaderHint),
}

#[tracing::instrument(skip_all, fields(since = ?q.as_ref().ok().and_then(|q| q.since)))]
async fn get_map(
    State(s): State<AppState>,
    q: Result<Query<MapQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let stale = match q.stale.as_deref() {
        None => false,
        Some("ok") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "stale",
                "the only accepted value is `ok`",
            ))
        }
    };
    if let Some(since) = q.since {
        let cap = s.cfg.watch_timeout();
        let wait = q
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(cap)
            .min(cap);
        let mut rx = s.sm.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|m| m.version > since)).await;
    }
    if stale {
        return Ok(local(&s));
    }
    match linearizable(&s).await? {
        Read::Local => Ok(local(&s)),
        Read::Forward(leader) => {
            let req = Incoming {
                method: Method::GET,
                path_and_query: "/v1/cluster/map".into(),
                headers,
                body: Bytes::new(),
            };
            forward::to_leader(&s, Some(leader), &req).await
        }
    }
}

fn local(s: &AppState) -> Response {
    Json(MapView::from(&*s.sm.current_map())).into_response()
}

/// Confirms leadership with a quorum (retried until the read deadline) or names the leader.
async fn linearizable(s: &AppState) -> Result<Read, ApiError> {
    let deadline = Instant::now() + s.cfg.read_deadline();
    let mut last = String::from("no leader known");
    loop {
        let res = timeout_at(deadline, s.raft.ensure_linearizable())
            .await
            .map_err(|_| ApiError::ReadUnavailable(last.clone()))?;
        match res {
            Ok(_) => return Ok(Read::Local),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                match forward::hint(&f) {
                    Some(h) if h.id != s.node_id => return Ok(Read::Forward(h)),
                    _ => last = "no leader known".into(),
                }
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                last = e.to_string();
            }
            Err(RaftError::Fatal(e)) => return Err(ApiError::Internal(e.to_string())),
        }
        if Instant::now() + READ_RETRY >= deadline {
            return Err(ApiError::ReadUnavailable(last));
        }
        sleep(READ_RETRY).await;
    }
}
