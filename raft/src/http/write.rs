//! Proposing a command: commit through raft, forward when not leader, bounded in time.

use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::error::{ClientWriteError, RaftError};
use serde::Serialize;
use tokio::time::{sleep, timeout_at, Instant};

use crate::http::error::ApiError;
use crate::http::forward::{self, Incoming};
use crate::http::state::AppState;
use crate::state_machine::{Request, SlotChange};

/// Pause between attempts while no leader is known.
const NO_LEADER_RETRY: Duration = Duration::from_millis(100);

/// Body of a successful command.
#[derive(Debug, Serialize)]
pub struct WriteReply {
    pub request_id: String,
    /// True when the request id had been applied before (the stored result is returned).
    pub replayed: bool,
    /// Map version right after the command.
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotChange>,
}

/// Commits `req` (or forwards `incoming` to the leader) within the write timeout.
pub async fn propose(
    s: &AppState,
    req: Request,
    incoming: &Incoming,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + s.cfg.write_timeout();
    let request_id = req.request_id.clone();
    loop {
        let res = timeout_at(deadline, s.raft.client_write(req.clone()))
            .await
            .map_err(|_| ApiError::WriteTimeout)?;
        match res {
            Ok(resp) => {
                let replayed = resp.data.replayed;
                return match resp.data.result {
                    Some(Ok(applied)) => {
                        let body = WriteReply {
                            request_id,
                            replayed,
                            version: applied.version,
                            slot: applied.slot,
                        };
                        let mut r = Json(body).into_response();
                        if replayed {
                            r.headers_mut()
                                .insert("idempotent-replayed", HeaderValue::from_static("true"));
                        }
                        Ok(r)
                    }
                    Some(Err(rejection)) => Err(ApiError::Rejected(rejection)),
                    None => Err(ApiError::Internal("command produced no result".into())),
                };
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                if let Some(leader) = forward::hint(&f) {
                    return forward::to_leader(s, Some(leader), incoming).await;
                }
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                return Err(ApiError::Membership(e.to_string()));
            }
            Err(RaftError::Fatal(e)) => return Err(ApiError::Internal(e.to_string())),
        }
        if Instant::now() + NO_LEADER_RETRY >= deadline {
            return Err(ApiError::NoLeader { leader: None });
        }
        sleep(NO_LEADER_RETRY).await;
    }
}
