//! Membership: bootstrap (`/v1/raft/initialize`), add learner, promote, remove, list.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use crate::http::error::ApiError;
use crate::http::extract::{self, json};
use crate::http::forward::{self, Incoming};
use crate::http::state::AppState;
use crate::types::{Node, NodeId, TypeConfig};

/// How many write timeouts a blocking add-learner (catch-up) may take.
const LEARNER_TIMEOUT_FACTOR: u32 = 4;

/// Admin-only routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/raft/initialize", post(initialize))
        .route("/v1/cluster/members/learner", post(add_learner))
        .route("/v1/cluster/members/promote", post(promote))
        .route("/v1/cluster/members/remove", post(remove))
}

/// Public read-only route.
pub fn public_router() -> Router<AppState> {
    Router::new().route("/v1/cluster/members", get(list))
}

#[derive(Deserialize)]
struct Member {
    node_id: NodeId,
    addr: String,
}

#[derive(Deserialize)]
struct InitBody {
    members: Vec<Member>,
}

#[derive(Deserialize)]
struct PromoteBody {
    node_ids: BTreeSet<NodeId>,
}

#[derive(Deserialize)]
struct RemoveBody {
    node_id: NodeId,
}

/// Membership as this member sees it.
#[derive(Serialize)]
pub struct MembersView {
    pub leader: Option<NodeId>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub nodes: BTreeMap<NodeId, String>,
    pub log_index: Option<u64>,
}

async fn list(State(s): State<AppState>) -> Json<MembersView> {
    let m = s.raft.metrics().borrow().clone();
    let mem = m.membership_config.membership();
    Json(MembersView {
        leader: m.current_leader,
        voters: mem.voter_ids().collect(),
        learners: mem.learner_ids().collect(),
        nodes: mem.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
        log_index: m.membership_config.log_id().map(|l| l.index),
    })
}

#[tracing::instrument(skip_all)]
async fn initialize(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let b: InitBody = json(&body)?;
    if b.members.is_empty() {
        return Err(ApiError::invalid("members", "at least one member"));
    }
    let mut nodes = BTreeMap::new();
    for m in b.members {
        extract::url("addr", &m.addr)?;
        nodes.insert(
            m.node_id,
            Node {
                addr: m.addr.trim_end_matches('/').to_owned(),
            },
        );
    }
    match s.raft.initialize(nodes).await {
        Ok(()) => Ok(list(State(s)).await.into_response()),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            Err(ApiError::AlreadyInitialized)
        }
        Err(RaftError::APIError(e)) => Err(ApiError::invalid("members", e.to_string())),
        Err(RaftError::Fatal(e)) => Err(ApiError::Internal(e.to_string())),
    }
}

type WriteResult =
    Result<ClientWriteResponse<TypeConfig>, RaftError<NodeId, ClientWriteError<NodeId, Node>>>;

/// Runs a membership change on the leader, or forwards the request there.
async fn change<F, Fut>(
    s: AppState,
    incoming: Incoming,
    factor: u32,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = WriteResult>,
{
    let limit = s.cfg.write_timeout() * factor;
    match timeout(limit, f(s.clone()))
        .await
        .map_err(|_| ApiError::WriteTimeout)?
    {
        Ok(_) => Ok(list(State(s)).await.into_response()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(fw))) => {
            forward::to_leader(&s, forward::hint(&fw), &incoming).await
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            Err(ApiError::Membership(e.to_string()))
        }
        Err(RaftError::Fatal(e)) => Err(ApiError::Internal(e.to_string())),
    }
}

#[tracing::instrument(skip_all)]
async fn add_learner(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: Member = json(&body)?;
    extract::url("addr", &b.addr)?;
    let node = Node {
        addr: b.addr.trim_end_matches('/').to_owned(),
    };
    let incoming = extract::incoming(m, &u, h, body);
    change(s, incoming, LEARNER_TIMEOUT_FACTOR, move |s| async move {
        s.raft.add_learner(b.node_id, node, true).await
    })
    .await
}

#[tracing::instrument(skip_all)]
async fn promote(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: PromoteBody = json(&body)?;
    let incoming = extract::incoming(m, &u, h, body);
    change(s, incoming, 1, move |s| async move {
        s.raft
            .change_membership(ChangeMembers::AddVoterIds(b.node_ids), false)
            .await
    })
    .await
}

#[tracing::instrument(skip_all)]
async fn remove(
    State(s): State<AppState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RemoveBody = json(&body)?;
    let incoming = extract::incoming(m, &u, h, body);
    let ids: BTreeSet<NodeId> = [b.node_id].into();
    change(s, incoming, 1, move |s| async move {
        s.raft
            .change_membership(ChangeMembers::RemoveVoters(ids), false)
            .await
    })
    .await
}
