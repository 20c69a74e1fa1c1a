//! Inbound raft RPCs: append-entries, vote, install-snapshot (member auth required).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesResponse, InstallSnapshotResponse, VoteResponse};

use crate::http::error::ApiError;
use crate::http::extract::json;
use crate::http::state::AppState;
use crate::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::types::NodeId;

/// Largest raft RPC body (snapshot chunks are JSON-encoded bytes).
pub const MAX_RPC_BODY: usize = 64 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_RPC_BODY))
}

type Reply<T, E = openraft::error::Infallible> = Json<Result<T, RaftError<NodeId, E>>>;

async fn append(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Reply<AppendEntriesResponse<NodeId>>, ApiError> {
    Ok(Json(s.raft.append_entries(json(&body)?).await))
}

async fn vote(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Reply<VoteResponse<NodeId>>, ApiError> {
    Ok(Json(s.raft.vote(json(&body)?).await))
}

async fn snapshot(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Reply<InstallSnapshotResponse<NodeId>, InstallSnapshotError>, ApiError> {
    Ok(Json(s.raft.install_snapshot(json(&body)?).await))
}
